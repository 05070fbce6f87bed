/* tests/kvm/halt_detect.c - a guest whose every vCPU halts with interrupts off ends the run (EMBER_STOP_HALTED); one idling with them on does not. */
#include "../lib/test.h"
#include "pvh_vm.h"

#include <ember/vmm.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * The guest is tests/guests/pvh32_halt.c, the PVH kernel of a real Ember
 * VM: its BSP starts halt.aps APs, then every vCPU executes HLT with
 * interrupts disabled (halt.irq=off) or enabled (on). KVM's in-kernel irqchip
 * keeps HLT in the kernel, so only the VMM's halt detector (vmm/halt.c) can
 * end the first; the second must run until it is stopped.
 */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Boots the guest; returns the console output once the BSP said it halts. */
static struct ember_vm *boot(const char *cmdline, unsigned cpus, int *cfd)
{
	struct ember_vm *vm = pvh_vm_create(PVH_GUEST(halt), cmdline, cpus, NULL, cfd);
	if (ember_vm_start(vm) < 0)
		TEST_FAIL("ember_vm_start");
	return vm;
}

/* Every vCPU in cli; hlt (the APs started, or left waiting for their
 * start-up IPI): stopped as halted within a few seconds of the last HLT. */
static void halts_for_good(const char *cmdline, unsigned cpus, const char *want_console,
			   const char *want_detail)
{
	int cfd;
	uint64_t t0 = now_ms();
	struct ember_vm *vm = boot(cmdline, cpus, &cfd);
	struct ember_run_result res;
	int r = ember_vm_wait(vm, 60 * 1000, &res);
	uint64_t ms = now_ms() - t0;
	if (r == -ETIMEDOUT) {
		ember_vm_stop(vm);
		ember_vm_wait(vm, -1, &res);
	}
	char *out = pvh_vm_console(cfd);
	TEST_LOG("guest console: %s; stop: %s (%s) after %llu ms", out,
		 ember_stop_reason_name(res.reason), res.detail, (unsigned long long)ms);
	CHECK_EQ(r, 0);
	CHECK(strstr(out, want_console) != NULL);
	CHECK_EQ(res.reason, EMBER_STOP_HALTED);
	CHECK_STR(ember_stop_reason_name(res.reason), "halted");
	CHECK_EQ(ember_stop_reason_exit_status(res.reason), EMBER_EXIT_HALTED);
	CHECK(strstr(res.detail, want_detail) != NULL);
	free(out);
	ember_vm_destroy(vm);
	close(cfd);
}

KVM_TEST_T(halt_detect_every_vcpu_cli_hlt, 180)
{
	halts_for_good("halt.irq=off halt.aps=1", 2, "halt: 1 APs up, halting irq=off",
		       "(2 halted, 0 waiting");
}

KVM_TEST_T(halt_detect_bsp_halted_aps_never_started, 180)
{
	halts_for_good("halt.irq=off halt.aps=0", 2, "halt: 0 APs up, halting irq=off",
		       "(1 halted, 1 waiting");
}

KVM_TEST_T(halt_detect_single_vcpu, 180)
{
	halts_for_good("halt.irq=off halt.aps=0", 1, "halt: 0 APs up, halting irq=off",
		       "(1 halted, 0 waiting");
}

/* sti; hlt on every vCPU: an idle guest, which an interrupt would wake. It
 * must still run after well over the detector's two looks a second apart;
 * then a stop request ends it as requested. */
KVM_TEST_T(halt_detect_leaves_idle_guest_alone, 180)
{
	int cfd;
	struct ember_vm *vm = boot("halt.irq=on halt.aps=1", 2, &cfd);
	/* wait until the guest says it halts, then 6 s more */
	uint64_t t0 = now_ms();
	char *out = NULL;
	while (now_ms() - t0 < 60000) {
		free(out);
		out = pvh_vm_console(cfd);
		if (strstr(out, "halting irq=on"))
			break;
		usleep(100000);
	}
	CHECK(strstr(out, "halt: 1 APs up, halting irq=on") != NULL);
	struct ember_run_result res;
	CHECK_ERR(ember_vm_wait(vm, 6000, &res), -ETIMEDOUT);
	struct ember_vm_info info;
	REQUIRE_OK(ember_vm_query(vm, &info));
	CHECK_EQ(info.state, EMBER_VM_RUNNING);
	REQUIRE_OK(ember_vm_stop(vm));
	REQUIRE_OK(ember_vm_wait(vm, 0, &res));
	CHECK_EQ(res.reason, EMBER_STOP_REQUESTED);
	TEST_LOG("guest console: %s; stop: %s (%s)", out, ember_stop_reason_name(res.reason),
		 res.detail);
	free(out);
	ember_vm_destroy(vm);
	close(cfd);
}
