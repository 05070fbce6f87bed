/* vmm/vm.h - the VM object shared by the generic VMM (vm.c) and the board (arch/x86/board.c). */
#ifndef EMBER_VMM_VM_H
#define EMBER_VMM_VM_H

#include <ember/hv.h>
#include <ember/vmm.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "mem.h"

struct vmm_board; /* the architecture's machine: devices and their state */

/* Registers of one vCPU, captured when the VM stopped on a crash. */
struct vmm_vcpu_dump {
	bool valid;
	struct ehv_x86_regs regs;
	struct ehv_x86_sregs sregs;
};

struct ember_vm {
	struct ember_config cfg; /* a deep copy of the caller's (vmm_config_copy) */
	struct vmm_mem mem;
	struct ehv_hypervisor *hyp;
	bool own_hyp; /* opened by create (else the caller's: ember_vm_create_on) */
	struct ehv_vm *hv;
	unsigned ncpus;
	struct ehv_vcpu **vcpus;
	struct ehv_runner *runner;
	struct bus *pio;
	struct bus *mmio;
	struct vmm_board *board;

	/* Stopping: the first request wins (stop_reason goes from -1 to an
	 * enum ember_stop_reason once), then wake_fd wakes the main loop. */
	atomic_int stop_reason;
	atomic_int stop_vcpu;
	int stop_error;
	char stop_detail[256];
	int wake_fd; /* eventfd */
	struct vmm_vcpu_dump *dumps;

	uint64_t start_ns;     /* the run's origin (cfg.start_ns or creation) */
	uint64_t created_ns;   /* ember_vm_create done */
	uint64_t first_run_ns; /* vCPUs released into KVM_RUN */
	bool ran;
};

/*
 * Records why the VM stops and wakes the main loop. Only the first call
 * counts; later ones are ignored. Any thread, including vCPU threads inside
 * a device callback; async-signal-safe when detail is NULL.
 */
void vmm_vm_request_stop(struct ember_vm *vm, enum ember_stop_reason reason, int vcpu, int error,
			 const char *detail);

/* Wakes the main loop without stopping (e.g. the UART has room again). */
void vmm_vm_wake(struct ember_vm *vm);

/* Console output: writes all of buf to cfg.console_out (dropped if < 0). */
void vmm_vm_console_write(struct ember_vm *vm, const uint8_t *buf, size_t len);

/* Milliseconds since the run's origin. */
double vmm_vm_ms(const struct ember_vm *vm);

/* ------------------------------------------------------------ the board's side
 * Implemented by vmm/arch/<arch>/board.c, called by vm.c in this order. */

/* The guest-physical hole in RAM below 4 GiB for MMIO: [*start, *end). */
void vmm_board_memory_hole(uint64_t *start, uint64_t *end);
/* After the VM and its memory exist, before any vCPU: in-kernel interrupt
 * controllers and timers, the devices on the buses. */
int vmm_board_create(struct ember_vm *vm, struct ember_error *err);
/* For each vCPU after it was created: CPUID, MSRs. */
int vmm_board_setup_vcpu(struct ember_vm *vm, unsigned idx, struct ember_error *err);
/* ACPI tables, the kernel, initrd and command line, vCPU 0's entry state. */
int vmm_board_load(struct ember_vm *vm, struct ember_error *err);
/* Console input for the guest: returns how many bytes were taken (the rest
 * waits until the board calls vmm_vm_wake). */
size_t vmm_board_console_input(struct ember_vm *vm, const uint8_t *buf, size_t len);
/* Frees the devices (the vCPUs are stopped). NULL board allowed. */
void vmm_board_destroy(struct ember_vm *vm);

#endif /* EMBER_VMM_VM_H */
