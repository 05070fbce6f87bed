/* tests/unit/hv_mock_shared.c - the backend-neutral vCPU-layer test bodies, run on the mock backend. */
#include "hv_mock_env.h"

TEST(hv_mock_kick_before_run)
{
	hvt_body_kick_before_run(&hvt_mock_backend);
}

TEST(hv_mock_kick_1000)
{
	hvt_body_kick_loop(&hvt_mock_backend, 1000);
}

TEST(hv_mock_counters)
{
	hvt_body_counters(&hvt_mock_backend);
}

TEST(hv_mock_runner_pause_resume_stop_4)
{
	hvt_body_runner_4(&hvt_mock_backend);
}

TEST(hv_mock_runner_call)
{
	hvt_body_runner_call(&hvt_mock_backend);
}

TEST(hv_mock_runner_halt)
{
	hvt_body_runner_halt(&hvt_mock_backend);
}

TEST(hv_mock_runner_errors)
{
	hvt_body_runner_errors(&hvt_mock_backend);
}
