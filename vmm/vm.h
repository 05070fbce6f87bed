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
	atomic_bool vcpus_paused;	/* ember_vm_pause_vcpus (changed under life_lock) */
	bool stopping_now;		/* ember_vm_stop in CREATED is ending it (life_lock) */

	/* Events (ember_vm_add_event_listener): ev_lock guards the list and
	 * serialises the calls. */
	pthread_mutex_t ev_lock;
	struct {
		ember_vm_event_fn fn;
		void *opaque;
	} listeners[EMBER_VM_MAX_LISTENERS];
	unsigned nlisteners;		       /* written under ev_lock, read atomically */
	struct ember_loop_source *balloon_src; /* the balloon's watcher, or NULL */
	uint64_t balloon_seen;		       /* its size at the last look (I/O thread) */

	/* The reset path (vm.c; --reboot restart or ember_vm_reset): a request
	 * sets reset_pending and wakes the I/O thread (stop_src), which resets
	 * the machine in place from boot_state, what the vCPUs and the
	 * in-kernel chips were before the first run (saved by create). resets
	 * counts the resets done. */
	atomic_bool reset_pending;
	atomic_uint resets;
	struct vmm_boot_state *boot_state;

	uint64_t start_ns;     /* the run's origin (cfg.start_ns or creation) */
	uint64_t created_ns;   /* ember_vm_create done */
	uint64_t first_run_ns; /* vCPUs released into KVM_RUN */

	/* Snapshots (vmm/snapshot.c). */
	bool restoring; /* built by a restore: no boot loading */
	/* during create: the memory file to map (the caller's); then the
	 * VM's own copy of it (a later snapshot reads its untouched pages
	 * there), or -1 */
	int restore_mem_fd;
	bool dirty_log;	     /* the RAM slots log dirty pages (since the last snapshot) */
	uint32_t *page_sums; /* each page's CRC-32 at the last snapshot */
	char snap_id[33];    /* the id of this VM's last snapshot ("": none) */

	/* Swap (vmm/swap.c): the page server, or NULL; swap_lock serialises
	 * the swap calls (taken before life_lock, never inside it). */
	pthread_mutex_t swap_lock;
	struct vmm_pageserver *ps;
	bool swapped_out;
	char ps_error[EMBER_ERROR_MAX]; /* why there is no page server ("": none) */
};

/* At ember_vm_start, on the starting thread (the control thread that
 * enables swap later may not create threads): the page server's thread
 * and userfaultfd, where guest memory can be served (anonymous or memfd,
 * no hugepages, not mapped from a file); a failure is kept in ps_error
 * for swap enable to report. */
void vmm_swap_start(struct ember_vm *vm);
/* A restore with EMBER_RESTORE_UFFD (on the restoring thread): guest memory
 * registered with a page server whose base is the memory file fd (dup'ed).
 * 0 or -errno (backing refused, userfaultfd); err says which. */
int vmm_swap_restore_from(struct ember_vm *vm, int fd, struct ember_error *err);

/* Before a snapshot reads guest memory (the VM paused): every page the page
 * server still holds elsewhere (swap file, a uffd restore's file) put in
 * place. 0 or -errno; err says which. */
int vmm_swap_populate_all(struct ember_vm *vm, struct ember_error *err);
/* At destroy, once no vCPU or I/O thread runs: the page server's end. */
void vmm_swap_fini(struct ember_vm *vm);

/*
 * Records why the VM stops and wakes the main loop. Only the first call
 * counts; later ones are ignored. Any thread, including vCPU threads inside
 * a device callback; async-signal-safe when detail is NULL.
 */
void vmm_vm_request_stop(struct ember_vm *vm, enum ember_stop_reason reason, int vcpu, int error,
			 const char *detail);

/* Tells every event listener (ember_vm_add_event_listener): ev->state is
 * filled in here (but for STATE and EXIT events, whose caller sets it). Any thread, not with life_lock or dev_lock held; cheap
 * when nobody listens. */
void vmm_vm_emit_event(struct ember_vm *vm, struct ember_vm_event *ev);

/* With a balloon: a timer of the VM's loop that tells the listeners when
 * the balloon's size moves (EMBER_VM_EVENT_BALLOON). 0 or the loop's errno. */
int vmm_vm_balloon_watch_start(struct ember_vm *vm);

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

/* ember_vm_create_on for a restore (vmm/snapshot.c): no boot loading (the
 * memory holds the guest); guest memory mapped privately from mem_fd
 * (vmm_mem_map_file), or left zero for the caller to fill when mem_fd < 0.
 * hv: a VM the caller created on hyp (ehv_vm_create) to be used in place of
 * a new one, or NULL; it is the VM's from this call on, whatever it returns.
 * The vCPUs are as created, for the caller to load. Errors as create. */
int vmm_vm_create_restored(const struct ember_config *cfg, struct ehv_hypervisor *hyp, int mem_fd,
			   struct ehv_vm *hv, struct ember_vm **out, struct ember_error *err);

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
/* The reset path (vm.c), vCPUs paused, dev_lock held, devs_paused set and
 * I/O in flight drained (vmm_board_devices_quiesce): every device back to
 * its power-on state (dev_reset: virtio devices to Status 0, their queues
 * dropped); host resources (images, taps, sockets) stay open. The RTC is
 * re-timed by the next vmm_board_devices_kick. vm.c then calls
 * vmm_board_load again. */
void vmm_board_devices_reset(struct ember_vm *vm);
/* The i-th virtio device (in the device list's order), NULL past the last.
 * Valid from vmm_board_create until vmm_board_destroy. */
struct vmm_virtio *vmm_board_virtio(struct ember_vm *vm, unsigned i);
/* The VM Generation ID's 16 bytes as the guest sees them: 0 or -EFAULT. */
int vmm_board_generation_id(struct ember_vm *vm, uint8_t id[16]);
/* A restored VM, its states loaded, before it starts: a new VM Generation
 * ID (and the guest told). 0 or an error (err says it). */
int vmm_board_restored(struct ember_vm *vm, struct ember_error *err);
/* Logs what each device did (debug level), when the VM stopped. */
void vmm_board_devices_report(struct ember_vm *vm);
/* The board's devices with a saved state, in a fixed order (legacy devices,
 * then the virtio devices in the device list's order), for vmm/devstate.c:
 * the i-th one's name and either its struct dev or its virtio device.
 * Returns false past the last. Valid from vmm_board_create until
 * vmm_board_destroy. */
struct dev;
struct vmm_board_state_dev {
	const char *name;	   /* its entry in the device list: "com1", "disk0" */
	const char *detail;	   /* the entry's detail (a disk's options), or NULL */
	struct dev *dev;	   /* a legacy device, or NULL */
	struct vmm_virtio *virtio; /* a virtio device, or NULL */
};
bool vmm_board_state_device(struct ember_vm *vm, unsigned i, struct vmm_board_state_dev *out);

/* Guest-visible events (vmm/control.c's ember_vm_power_button...), any
 * thread: an ACPI event through the board's Generic Event Device (n: the
 * GPE-style event's number), and its counts; an RTC alarm/update event
 * (1: IRQ 8 raised, 0: the guest enabled neither). Errors as the public
 * calls (vmm.h), err set. */
enum vmm_acpi_event { VMM_ACPI_POWER_BUTTON, VMM_ACPI_SLEEP_BUTTON, VMM_ACPI_GPE };
int vmm_board_acpi_event(struct ember_vm *vm, enum vmm_acpi_event ev, unsigned n,
			 struct ember_error *err);
int vmm_board_acpi_stats(struct ember_vm *vm, struct ember_acpi_stats *out,
			 struct ember_error *err);
int vmm_board_rtc_event(struct ember_vm *vm, struct ember_error *err);
/* Hotplug of a virtio-net into the board's slots (vmm.h's
 * ember_vm_net_hotplug_add/remove; errors as there). */
int vmm_board_hotplug_add(struct ember_vm *vm, const char *spec, unsigned *slot,
			  struct ember_error *err);
int vmm_board_hotplug_remove(struct ember_vm *vm, unsigned slot, struct ember_error *err);

#endif /* EMBER_VMM_VM_H */
