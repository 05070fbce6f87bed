/* vmm/boot/elf.c - ELF vmlinux loading through the PVH entry note, and the PVH start_info. */
#include "boot.h"
#include "../../lib/io/util.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

/* xen/include/public/elfnote.h: the 32-bit physical entry point for PVH. */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
/* xen/include/public/arch-x86/hvm/start_info.h */
#define XEN_HVM_START_MAGIC_VALUE 0x336ec578

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;	 /* version >= 1 */
	uint32_t memmap_entries; /* version >= 1 */
	uint32_t reserved;
};
struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};
struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info ABI size");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry ABI size");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry ABI size");

#define MAX_PHNUM 64
/* The VMM's own boot structures live below 1 MiB. */
#define LOW_RESERVED 0x100000ULL

/* Scans one PT_NOTE segment's bytes for the PVH entry note. Returns 1 and
 * sets *entry if found, 0 if not, -ENOEXEC for a malformed note. */
static int scan_notes(const uint8_t *p, uint64_t n, uint32_t *entry, struct ember_error *err)
{
	uint64_t off = 0;
	while (n - off >= 12) {
		uint32_t namesz = vmm_le32(p + off), descsz = vmm_le32(p + off + 4);
		uint32_t type = vmm_le32(p + off + 8);
		uint64_t name_off = off + 12;
		uint64_t name_len = vmm_align_up(namesz, 4);
		uint64_t desc_off = name_off + name_len;
		uint64_t desc_len = vmm_align_up(descsz, 4);
		if (name_len > n - name_off || desc_len > n - desc_off)
			return vmm_errf(err, -ENOEXEC,
					"ELF: a note runs past the end of its segment");
		if (namesz == 4 && !memcmp(p + name_off, "Xen", 4) &&
		    type == XEN_ELFNOTE_PHYS32_ENTRY) {
			uint64_t v;
			if (descsz == 4)
				v = vmm_le32(p + desc_off);
			else if (descsz == 8)
				v = vmm_le64(p + desc_off);
			else
				return vmm_errf(
				    err, -ENOEXEC,
				    "ELF: the PVH entry note has a %u-byte value (want 4 "
				    "or 8)",
				    descsz);
			if (v > UINT32_MAX)
				return vmm_errf(err, -ENOEXEC,
						"ELF: the PVH entry %#llx is above 4 GiB",
						(unsigned long long)v);
			*entry = (uint32_t)v;
			return 1;
		}
		off = desc_off + desc_len;
	}
	return 0;
}

/* Section headers are optional for loading: a malformed table only means
 * no zero ranges. */
static void find_zero_ranges(const uint8_t *img, uint64_t len, const Elf64_Ehdr *eh,
			     struct vmm_elf *out)
{
	if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shnum == 0 || eh->e_shnum > 4096 ||
	    vmm_range_exceeds(eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr), len))
		return;
	for (unsigned i = 0; i < eh->e_shnum && out->nzero < VMM_ELF_MAX_ZERO; i++) {
		Elf64_Shdr sh;
		memcpy(&sh, img + eh->e_shoff + (uint64_t)i * sizeof(sh), sizeof(sh));
		if (sh.sh_type != SHT_NOBITS || !(sh.sh_flags & SHF_ALLOC) || sh.sh_size == 0)
			continue;
		for (unsigned k = 0; k < out->nsegments; k++) {
			const struct vmm_elf_segment *s = &out->segments[k];
			if (sh.sh_addr < s->vaddr || sh.sh_addr - s->vaddr >= s->filesz)
				continue;
			uint64_t start = s->offset + (sh.sh_addr - s->vaddr);
			uint64_t end = s->offset + s->filesz;
			if (sh.sh_size < end - start)
				end = start + sh.sh_size;
			/* whole pages only, so that the rest can still be mapped */
			start = vmm_align_up(start, 4096);
			end = vmm_align_down(end, 4096);
			if (end > start)
				out->zero[out->nzero++] =
				    (struct vmm_elf_zero){.offset = start, .len = end - start};
			break;
		}
	}
}

int vmm_elf_parse(const uint8_t *img, uint64_t len, struct vmm_elf *out, struct ember_error *err)
{
	memset(out, 0, sizeof(*out));
	if (!img || len < sizeof(Elf64_Ehdr))
		return vmm_errf(err, -ENOEXEC,
				"ELF: file is %llu bytes, too short for an ELF header",
				(unsigned long long)len);
	Elf64_Ehdr eh;
	memcpy(&eh, img, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
		return vmm_errf(err, -ENOEXEC, "ELF: bad magic (not an ELF file)");
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
		return vmm_errf(err, -ENOEXEC, "ELF: not a little-endian 64-bit ELF file");
	if (eh.e_machine != EM_X86_64)
		return vmm_errf(err, -ENOEXEC, "ELF: machine %u is not x86-64", eh.e_machine);
	if (eh.e_type != ET_EXEC)
		return vmm_errf(err, -ENOEXEC, "ELF: type %u is not an executable (ET_EXEC)",
				eh.e_type);
	if (eh.e_phentsize != sizeof(Elf64_Phdr))
		return vmm_errf(err, -ENOEXEC, "ELF: program header size %u (want %zu)",
				eh.e_phentsize, sizeof(Elf64_Phdr));
	if (eh.e_phnum == 0 || eh.e_phnum > MAX_PHNUM)
		return vmm_errf(err, -ENOEXEC, "ELF: %u program headers (want 1..%d)", eh.e_phnum,
				MAX_PHNUM);
	if (vmm_range_exceeds(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), len))
		return vmm_errf(err, -ENOEXEC,
				"ELF: truncated: program headers at %#llx run past the end of the "
				"file",
				(unsigned long long)eh.e_phoff);

	bool found = false;
	out->low = UINT64_MAX;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, img + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_NOTE) {
			if (vmm_range_exceeds(ph.p_offset, ph.p_filesz, len))
				return vmm_errf(
				    err, -ENOEXEC,
				    "ELF: truncated: note segment %u runs past the end of "
				    "the file",
				    i);
			if (!found) {
				int r = scan_notes(img + ph.p_offset, ph.p_filesz, &out->pvh_entry,
						   err);
				if (r < 0)
					return r;
				found = r == 1;
			}
			continue;
		}
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (vmm_range_exceeds(ph.p_offset, ph.p_filesz, len))
			return vmm_errf(
			    err, -ENOEXEC,
			    "ELF: truncated: segment %u (offset %#llx, %llu bytes) runs "
			    "past the end of the %llu-byte file",
			    i, (unsigned long long)ph.p_offset, (unsigned long long)ph.p_filesz,
			    (unsigned long long)len);
		if (ph.p_filesz > ph.p_memsz)
			return vmm_errf(err, -ENOEXEC,
					"ELF: segment %u has more file bytes (%llu) than memory "
					"bytes (%llu)",
					i, (unsigned long long)ph.p_filesz,
					(unsigned long long)ph.p_memsz);
		if (vmm_range_exceeds(ph.p_paddr, ph.p_memsz, 1ull << 46))
			return vmm_errf(
			    err, -ENOEXEC,
			    "ELF: segment %u at physical %#llx+%#llx is beyond any guest "
			    "memory",
			    i, (unsigned long long)ph.p_paddr, (unsigned long long)ph.p_memsz);
		if (out->nsegments >= VMM_ELF_MAX_SEGMENTS)
			return vmm_errf(err, -ENOEXEC, "ELF: more than %d loadable segments",
					VMM_ELF_MAX_SEGMENTS);
		out->segments[out->nsegments++] = (struct vmm_elf_segment){
		    .offset = ph.p_offset,
		    .filesz = ph.p_filesz,
		    .paddr = ph.p_paddr,
		    .memsz = ph.p_memsz,
		    .vaddr = ph.p_vaddr,
		};
		if (ph.p_paddr < out->low)
			out->low = ph.p_paddr;
		if (ph.p_paddr + ph.p_memsz > out->high)
			out->high = ph.p_paddr + ph.p_memsz;
	}
	if (!out->nsegments)
		return vmm_errf(err, -ENOEXEC, "ELF: no loadable segment");
	/* two segments copied to the same guest memory: one would overwrite
	 * the other, and no linker makes such a kernel */
	for (unsigned i = 0; i < out->nsegments; i++)
		for (unsigned k = i + 1; k < out->nsegments; k++) {
			const struct vmm_elf_segment *a = &out->segments[i], *b = &out->segments[k];
			if (a->paddr < b->paddr + b->memsz && b->paddr < a->paddr + a->memsz)
				return vmm_errf(
				    err, -ENOEXEC,
				    "ELF: loadable segments at physical %#llx+%#llx and "
				    "%#llx+%#llx overlap",
				    (unsigned long long)a->paddr, (unsigned long long)a->memsz,
				    (unsigned long long)b->paddr, (unsigned long long)b->memsz);
		}
	find_zero_ranges(img, len, &eh, out);
	out->pvh_missing = !found;
	if (!found)
		return vmm_errf(err, -ENOEXEC,
				"ELF: no PVH entry note (Xen note XEN_ELFNOTE_PHYS32_ENTRY); the "
				"kernel needs CONFIG_PVH=y, or boot its bzImage");
	bool inside = false;
	for (unsigned i = 0; i < out->nsegments; i++) {
		const struct vmm_elf_segment *s = &out->segments[i];
		if (out->pvh_entry >= s->paddr && out->pvh_entry - s->paddr < s->filesz)
			inside = true;
	}
	if (!inside)
		return vmm_errf(err, -ENOEXEC,
				"ELF: the PVH entry %#x is not inside a loaded segment",
				out->pvh_entry);
	return 0;
}

int vmm_elf_load(const struct vmm_mem *mem, const uint8_t *img, uint64_t len, int fd,
		 const struct vmm_elf *elf, struct ember_error *err)
{
	/* check everything first, then copy */
	for (unsigned i = 0; i < elf->nsegments; i++) {
		const struct vmm_elf_segment *s = &elf->segments[i];
		if (vmm_range_exceeds(s->offset, s->filesz, len) || s->filesz > s->memsz)
			return vmm_errf(err, -EINVAL, "ELF: segment %u changed since it was parsed",
					i);
		if (s->paddr < LOW_RESERVED)
			return vmm_errf(err, -ENOEXEC,
					"ELF: segment %u at %#llx overlaps the low 1 MiB the VMM "
					"uses for boot structures",
					i, (unsigned long long)s->paddr);
		if (!vmm_mem_contains(mem, s->paddr, s->memsz))
			return vmm_errf(
			    err, -E2BIG,
			    "ELF: segment %u at %#llx+%#llx is outside guest memory (RAM "
			    "below 4 GiB ends at %llu MiB); use more --mem",
			    i, (unsigned long long)s->paddr, (unsigned long long)s->memsz,
			    (unsigned long long)vmm_mem_low_end(mem) >> 20);
	}
	for (unsigned i = 0; i < elf->nsegments; i++) {
		const struct vmm_elf_segment *s = &elf->segments[i];
		/* the segment's file bytes, minus the zero ranges inside it */
		uint64_t off = s->offset, end = s->offset + s->filesz;
		while (off < end) {
			uint64_t next = end, skip = 0;
			for (unsigned k = 0; k < elf->nzero; k++) {
				const struct vmm_elf_zero *z = &elf->zero[k];
				if (z->len && z->offset >= off && z->offset < next &&
				    z->len <= end - z->offset) {
					next = z->offset;
					skip = z->len;
				}
			}
			int r = next > off ? vmm_boot_copy(mem, s->paddr + (off - s->offset), img,
							   fd, off, next - off)
					   : 0;
			if (r < 0)
				return vmm_errf(err, r, "ELF: cannot write segment %u", i);
			off = next + skip;
		}
	}
	return 0;
}

int vmm_pvh_write_start_info(const struct vmm_mem *mem, uint64_t info_gpa, uint64_t modlist_gpa,
			     uint64_t memmap_gpa, const struct vmm_linux_boot *lb,
			     struct ember_error *err)
{
	struct hvm_start_info si = {
	    .magic = XEN_HVM_START_MAGIC_VALUE,
	    .version = 1,
	    .cmdline_paddr = lb->cmdline_gpa,
	    .rsdp_paddr = lb->rsdp_gpa,
	    .memmap_paddr = memmap_gpa,
	    .memmap_entries = lb->e820_count,
	};
	if (lb->initrd_size) {
		struct hvm_modlist_entry mod = {.paddr = lb->initrd_gpa, .size = lb->initrd_size};
		if (vmm_mem_write(mem, modlist_gpa, &mod, sizeof(mod)) < 0)
			return vmm_errf(err, -E2BIG, "PVH module list at %#llx is outside memory",
					(unsigned long long)modlist_gpa);
		si.nr_modules = 1;
		si.modlist_paddr = modlist_gpa;
	}
	for (unsigned i = 0; i < lb->e820_count; i++) {
		struct hvm_memmap_table_entry e = {
		    .addr = lb->e820[i].addr,
		    .size = lb->e820[i].size,
		    .type = lb->e820[i].type,
		};
		if (vmm_mem_write(mem, memmap_gpa + (uint64_t)i * sizeof(e), &e, sizeof(e)) < 0)
			return vmm_errf(err, -E2BIG, "PVH memory map at %#llx is outside memory",
					(unsigned long long)memmap_gpa);
	}
	if (vmm_mem_write(mem, info_gpa, &si, sizeof(si)) < 0)
		return vmm_errf(err, -E2BIG, "PVH start_info at %#llx is outside memory",
				(unsigned long long)info_gpa);
	return 0;
}
