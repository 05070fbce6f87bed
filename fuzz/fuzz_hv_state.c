/* fuzz/fuzz_hv_state.c - libFuzzer target: saved-state blobs (hv.h) into ehv_vcpu_restore_state and ehv_vm_restore_state on the mock backend. */
#include <ember/hv.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * A snapshot file is untrusted input. The first byte picks the target (bit
 * 0: the VM, else vCPU 0; bit 1: fix the header's length and CRC-32 so the
 * fuzzer gets past them into the sections), the rest is the blob. Restore
 * must refuse or accept without crashing, reading out of bounds or leaking.
 */

struct fz {
	struct ehv_hypervisor *hyp;
	struct ehv_vm *vm;
	struct ehv_vcpu *vcpu;
};

static struct fz *fz_get(void)
{
	static struct fz f;
	if (!f.vcpu) {
		struct ehv_hypervisor_options o = {.backend = EHV_BACKEND_MOCK};
		if (ehv_hypervisor_open(&o, &f.hyp) < 0 || ehv_vm_create(f.hyp, &f.vm) < 0 ||
		    ehv_vm_setup_platform(f.vm, &(struct ehv_platform_config){EHV_PLATFORM_PIT}) <
			0 ||
		    ehv_vcpu_create(f.vm, 0, &f.vcpu) < 0)
			abort();
	}
	return &f;
}

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return ~c;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t mode = data[0];
	size_t len = size - 1;
	/* a copy of exactly len bytes, so ASan sees any read past the blob */
	uint8_t *b = malloc(len ? len : 1);
	if (!b)
		return 0;
	memcpy(b, data + 1, len);
	if ((mode & 2) && len >= 32) {
		put32(b + 0, EHV_STATE_MAGIC);
		b[4] = EHV_STATE_VERSION;
		b[5] = 0;
		b[6] = (mode & 1) ? 2 : 1; /* the kind: VM or vCPU */
		b[7] = 0;
		put32(b + 8, EHV_BACKEND_MOCK);
		put32(b + 16, (uint32_t)len);
		put32(b + 20, 0);
		put32(b + 24, crc32_ieee(b + 32, len - 32));
	}
	struct fz *f = fz_get();
	if (mode & 1)
		(void)ehv_vm_restore_state(f->vm, b, len);
	else
		(void)ehv_vcpu_restore_state(f->vcpu, b, len);
	free(b);
	return 0;
}
