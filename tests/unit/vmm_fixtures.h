/* tests/unit/vmm_fixtures.h - synthetic kernel images (bzImage, ELF with a PVH note) for loader tests and fuzz seeds. */
#ifndef EMBER_TESTS_VMM_FIXTURES_H
#define EMBER_TESTS_VMM_FIXTURES_H

#include <elf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/io/util.h" /* vmm_put16/32/64 */

/*
 * A minimal bzImage: setup_sects 4 (5 sectors of real-mode code), then
 * payload bytes of "protected-mode code" (a counting pattern), protocol
 * 2.15, relocatable, 64-bit entry, init_size 8 MiB, pref_address 16 MiB
 * (like Debian's kernel, smaller). *len receives the size; free() it.
 */
#define FX_BZ_SETUP_SECTS 4
#define FX_BZ_SETUP_SIZE  ((FX_BZ_SETUP_SECTS + 1) * 512)
#define FX_BZ_INIT_SIZE	  0x800000u
#define FX_BZ_PREF	  0x1000000ull
static inline uint8_t *fx_bzimage(size_t payload, size_t *len)
{
	size_t n = FX_BZ_SETUP_SIZE + payload;
	uint8_t *b = calloc(1, n);
	*len = 0;
	if (!b)
		return NULL;
	b[0x1f1] = FX_BZ_SETUP_SECTS;
	vmm_put32(b + 0x1f4, (uint32_t)((payload + 15) / 16)); /* syssize */
	vmm_put16(b + 0x1fe, 0xaa55);
	b[0x200] = 0xeb; /* jmp */
	b[0x201] = 0x6a; /* header ends at 0x26c */
	memcpy(b + 0x202, "HdrS", 4);
	vmm_put16(b + 0x206, 0x020f);	  /* protocol 2.15 */
	b[0x211] = 0x01;		  /* LOADED_HIGH */
	vmm_put32(b + 0x214, 0x100000);	  /* code32_start */
	vmm_put32(b + 0x22c, 0x7fffffff); /* initrd_addr_max */
	vmm_put32(b + 0x230, 0x200000);	  /* kernel_alignment */
	b[0x234] = 1;			  /* relocatable */
	b[0x235] = 21;
	vmm_put16(b + 0x236, 0x7f);	  /* xloadflags: 64-bit, above 4G, ... */
	vmm_put32(b + 0x238, 2047);	  /* cmdline_size */
	vmm_put64(b + 0x258, FX_BZ_PREF); /* pref_address */
	vmm_put32(b + 0x260, FX_BZ_INIT_SIZE);
	for (size_t i = 0; i < payload; i++)
		b[FX_BZ_SETUP_SIZE + i] = (uint8_t)(i * 7 + 1);
	*len = n;
	return b;
}

/* fx_bzimage(payload) written to a new file made from the mkstemp template
 * tmpl (the caller unlinks it); returns 0 or -1. */
static inline int fx_bzimage_file(char *tmpl, size_t payload)
{
	size_t len;
	uint8_t *bz = fx_bzimage(payload, &len);
	int fd = bz ? mkstemp(tmpl) : -1;
	bool ok = fd >= 0 && write(fd, bz, len) == (ssize_t)len;
	if (fd >= 0)
		close(fd);
	free(bz);
	return ok ? 0 : -1;
}

/*
 * A minimal ELF64 x86-64 executable: two PT_LOAD segments at 16 MiB (text,
 * 8 KiB in the file) and 20 MiB (data, 4 KiB in the file, 12 KiB in memory),
 * and a PT_NOTE with a "GNU" note followed by the Xen PHYS32_ENTRY note
 * (8-byte value, as Linux emits it) pointing 0x850 into the text.
 */
#define FX_ELF_TEXT_PADDR 0x1000000ull
#define FX_ELF_DATA_PADDR 0x1400000ull
#define FX_ELF_ENTRY	  0x1000850u
#define FX_ELF_TEXT_OFF	  0x1000
#define FX_ELF_TEXT_SIZE  0x2000
#define FX_ELF_DATA_OFF	  0x3000
#define FX_ELF_DATA_SIZE  0x1000
#define FX_ELF_DATA_MEMSZ 0x3000
#define FX_ELF_NOTE_OFF	  0x800
static inline uint8_t *fx_elf(size_t *len)
{
	size_t n = FX_ELF_DATA_OFF + FX_ELF_DATA_SIZE;
	uint8_t *b = calloc(1, n);
	*len = 0;
	if (!b)
		return NULL;
	Elf64_Ehdr eh = {0};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_entry = FX_ELF_TEXT_PADDR;
	eh.e_phoff = sizeof(Elf64_Ehdr);
	eh.e_ehsize = sizeof(Elf64_Ehdr);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 3;
	memcpy(b, &eh, sizeof(eh));

	/* notes: GNU build id (4-byte name, 8-byte desc), then Xen PVH entry */
	uint8_t *note = b + FX_ELF_NOTE_OFF;
	vmm_put32(note, 4);
	vmm_put32(note + 4, 8);
	vmm_put32(note + 8, 3);
	memcpy(note + 12, "GNU", 4);
	memset(note + 16, 0xab, 8);
	note += 24;
	vmm_put32(note, 4);
	vmm_put32(note + 4, 8);
	vmm_put32(note + 8, 18); /* XEN_ELFNOTE_PHYS32_ENTRY */
	memcpy(note + 12, "Xen", 4);
	vmm_put64(note + 16, FX_ELF_ENTRY);
	size_t notes_size = 48;

	Elf64_Phdr ph[3] = {
	    {.p_type = PT_LOAD,
	     .p_flags = PF_R | PF_X,
	     .p_offset = FX_ELF_TEXT_OFF,
	     .p_vaddr = 0xffffffff81000000ull,
	     .p_paddr = FX_ELF_TEXT_PADDR,
	     .p_filesz = FX_ELF_TEXT_SIZE,
	     .p_memsz = FX_ELF_TEXT_SIZE,
	     .p_align = 0x1000},
	    {.p_type = PT_LOAD,
	     .p_flags = PF_R | PF_W,
	     .p_offset = FX_ELF_DATA_OFF,
	     .p_vaddr = 0xffffffff81400000ull,
	     .p_paddr = FX_ELF_DATA_PADDR,
	     .p_filesz = FX_ELF_DATA_SIZE,
	     .p_memsz = FX_ELF_DATA_MEMSZ,
	     .p_align = 0x1000},
	    {.p_type = PT_NOTE,
	     .p_flags = PF_R,
	     .p_offset = FX_ELF_NOTE_OFF,
	     .p_filesz = notes_size,
	     .p_memsz = notes_size,
	     .p_align = 4},
	};
	memcpy(b + sizeof(Elf64_Ehdr), ph, sizeof(ph));
	for (size_t i = 0; i < FX_ELF_TEXT_SIZE; i++)
		b[FX_ELF_TEXT_OFF + i] = (uint8_t)(i ^ 0x5a);
	for (size_t i = 0; i < FX_ELF_DATA_SIZE; i++)
		b[FX_ELF_DATA_OFF + i] = (uint8_t)(i * 3);
	*len = n;
	return b;
}

/* Offset of program header i in fx_elf's image. */
#define FX_ELF_PHDR(i) (sizeof(Elf64_Ehdr) + (i) * sizeof(Elf64_Phdr))

#endif /* EMBER_TESTS_VMM_FIXTURES_H */
