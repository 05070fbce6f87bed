/* tests/kvm/hv_kvm_shared.c - the backend-neutral vCPU-layer test bodies, run on real KVM. */
#include "hv_kvm_env.h"

KVM_TEST(hv_kvm_kick_before_run)
{
	hvt_body_kick_before_run(&hvk_backend);
}

KVM_TEST_T(hv_kvm_kick_1000, 300)
{
	hvt_body_kick_loop(&hvk_backend, 1000);
}

KVM_TEST(hv_kvm_counters)
{
	hvt_body_counters(&hvk_backend);
}

KVM_TEST_T(hv_kvm_runner_pause_resume_stop_4, 300)
{
	hvt_body_runner_4(&hvk_backend);
}

KVM_TEST(hv_kvm_runner_call)
{
	hvt_body_runner_call(&hvk_backend);
}

KVM_TEST(hv_kvm_runner_halt)
{
	hvt_body_runner_halt(&hvk_backend);
}

KVM_TEST(hv_kvm_runner_errors)
{
	hvt_body_runner_errors(&hvk_backend);
}
