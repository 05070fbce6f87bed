/* tests/kvm/pvh_vm.h - real Ember VMs (ember_vm_create) whose kernel is a bare PVH test guest (tests/guests/pvh32_*.c). */
#ifndef EMBER_TESTS_KVM_PVH_VM_H
#define EMBER_TESTS_KVM_PVH_VM_H

#include <ember/vmm.h>

#include <stddef.h>

/* The embedded image of tests/guests/pvh32_NAME.c (tests/guests/pvh.mk). */
#define PVH_GUEST(name_)                                                                           \
	({                                                                                         \
		extern const unsigned char ember_pvh_##name_##_start[], ember_pvh_##name_##_end[]; \
		(struct pvh_image){ember_pvh_##name_##_start,                                      \
				   (size_t)(ember_pvh_##name_##_end - ember_pvh_##name_##_start)}; \
	})
struct pvh_image {
	const unsigned char *data;
	size_t size;
};

/* A file in $TMPDIR (else /tmp) named after what; returns its fd, path in
 * path (the caller unlinks it). Fails the test on error. */
int pvh_tmpfile(const char *what, char *path, size_t len);
/* Writes all n bytes or fails the test. */
void pvh_write_all(int fd, const void *p, size_t n);

/*
 * Builds (does not start) a VM booting img as its PVH kernel with cmdline,
 * cpus vCPUs and 64 MiB, plus the settings in keys (NULL-terminated pairs of
 * ember_config_set key, value; may be NULL). The console output goes to a
 * fresh unlinked file whose fd is put in *console_fd. Fails the test on
 * error.
 */
struct ember_vm *pvh_vm_create(struct pvh_image img, const char *cmdline, unsigned cpus,
			       const char *const *keys, int *console_fd);
/* pvh_vm_create with the VM's log (every level: the keys' "log-level"
 * decides what comes) given to log(opaque, ...), from any VM thread. */
struct ember_vm *pvh_vm_create_log(struct pvh_image img, const char *cmdline, unsigned cpus,
				   const char *const *keys, int *console_fd, ember_log_fn log,
				   void *opaque);

/* The console output so far (at most 16 MiB), NUL-terminated, without
 * '\r', a NUL byte in it read as '?' (free it). */
char *pvh_vm_console(int console_fd);

#endif /* EMBER_TESTS_KVM_PVH_VM_H */
