/* vmm/vm.h - the VM object shared by the generic VMM (vm.c) and the board (arch/x86/board.c). */
#ifndef EMBER_VMM_VM_H
#define EMBER_VMM_VM_H

#include <ember/hv.h>
#include <ember/loop.h>
#include <ember/vmm.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../lib/io/bus.h"
#include "config.h"
#include "console.h"
#include "../lib/io/mem.h"

struct vmm_board;  /* the architecture's machine: devices and their state */
struct vmm_virtio; /* vmm/virtio.h */

/* Registers of one vCPU, captured when the VM stopped on a crash. */
struct vmm_vcpu_dump {
	bool valid;
	struct ehv_x86_regs regs;
	struct ehv_x86_sregs sregs;
};

/* The halt detector's state (vmm/halt.c), I/O thread only. */
struct vmm_halt_watch {
	struct ember_loop_source *src; /* its timer on the VM's loop */
	unsigned looks;		       /* probes in a row that found the guest halted */
	bool have_exits;
	uint64_t exits; /* the vCPUs' exit count at the last look */
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
	 * enum ember_stop_reason once), then the stop wake-up tells the I/O
	 * thread, which stops the vCPUs, drains the console and marks the VM
	 * STOPPED. */
	atomic_int stop_reason;
	atomic_int stop_vcpu;
	int stop_error;
	char stop_detail[256];
	struct vmm_vcpu_dump *dumps;

	/* The I/O thread runs loop from ember_vm_start until STOPPED. */
	struct ember_loop *loop;
	struct ember_loop_source *stop_src; /* wake-up: a stop request, a vCPU stopped */
	struct ember_loop_source *kick_src; /* wake-up: console output or UART room */
	struct ember_loop_source *in_src;   /* console input fd, or NULL */
	struct ember_loop_source *eot_src;  /* timer: EOF to the built-in shell, or NULL */
	struct ember_loop_source *out_src;  /* console output fd, or NULL */
	pthread_t io_thread;
	bool io_started;
	struct vmm_conout out;
	struct vmm_conin in;
	struct vmm_halt_watch halt;
	uint32_t console_size; /* atomic: cols << 16 | rows asked for, 0: none */

	/* Lifecycle: state (enum ember_vm_state) changes under life_lock;
	 * life_cond (CLOCK_MONOTONIC) tells waiters it became STOPPED.
	 * dev_lock is held by the I/O thread while it works on devices and by
	 * pause/resume while they change devs_paused. */
	pthread_mutex_t life_lock;
	pthread_cond_t life_cond;
	atomic_int state;
	pthread_mutex_t dev_lock;
	bool devs_paused;
	struct ember_run_result result; /* valid once STOPPED */
	int *tids;			/* each vCPU thread's id */

	uint64_t start_ns;     /* the run's origin (cfg.start_ns or creation) */
	uint64_t created_ns;   /* ember_vm_create done */
	uint64_t first_run_ns; /* vCPUs released into KVM_RUN */
};

/*
 * Records why the VM stops and wakes the main loop. Only the first call
 * counts; later ones are ignored. Any thread, including vCPU threads inside
 * a device callback; async-signal-safe when detail is NULL.
 */
void vmm_vm_request_stop(struct ember_vm *vm, enum ember_stop_reason reason, int vcpu, int error,
			 const char *detail);

/* Wakes the I/O thread without stopping (e.g. the UART has room again for
 * console input). Any thread, never blocks. */
void vmm_vm_wake(struct ember_vm *vm);

/* Console output (the UART's tx, on a vCPU thread): queues buf for
 * cfg.console_out; never blocks. Returns the bytes queued (all when there is
 * no console); fewer when the buffer is full. */
size_t vmm_vm_console_write(struct ember_vm *vm, const uint8_t *buf, size_t len);
/* True when console output cannot take one more byte now (the UART's
 * tx_full: the guest then sees its transmitter busy). */
bool vmm_vm_console_full(struct ember_vm *vm);

/* Adds the halt detector's timer to vm->loop (vmm/halt.c): a guest whose
 * every vCPU stays in HLT with interrupts off stops with EMBER_STOP_HALTED.
 * 0 or the loop's errno. */
int vmm_halt_watch_start(struct ember_vm *vm);

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
/* Console output has room again: the UART sends what it held. Called by the
 * I/O thread (not while the VM is paused). */
void vmm_board_console_ready(struct ember_vm *vm);
/* The console's terminal size changed (I/O thread, dev_lock held, not
 * paused): the virtio console tells the guest. */
void vmm_board_console_resize(struct ember_vm *vm, uint16_t cols, uint16_t rows);
/* Frees the devices (the vCPUs are stopped). NULL board allowed. */
void vmm_board_destroy(struct ember_vm *vm);
/* I/O thread: device work held while the VM was paused runs now. */
void vmm_board_devices_kick(struct ember_vm *vm);
/* Pausing, dev_lock held and devs_paused set: waits until no device has I/O
 * in flight (a disk's requests complete), so a paused VM runs no I/O. */
void vmm_board_devices_quiesce(struct ember_vm *vm);
/* The i-th virtio device (in the device list's order), NULL past the last.
 * Valid from vmm_board_create until vmm_board_destroy. */
struct vmm_virtio *vmm_board_virtio(struct ember_vm *vm, unsigned i);
/* Logs what each device did (debug level), when the VM stopped. */
void vmm_board_devices_report(struct ember_vm *vm);

#endif /* EMBER_VMM_VM_H */
