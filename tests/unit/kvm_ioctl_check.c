/* tests/unit/kvm_ioctl_check.c - EKVM_IOCTL rejects a wrong-size argument at compile time. */
#include <ember/kvm.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/test.h"

/* Set by tests/unit/kvm.mk: the compiler of this build and the source tree. */
#ifndef EMBER_TEST_CC
#define EMBER_TEST_CC "cc"
#endif
#ifndef EMBER_TEST_SRCDIR
#define EMBER_TEST_SRCDIR "."
#endif

#define ASSERT_MSG "argument size does not match"

struct compiled {
	int status;	/* the compiler's exit status */
	char out[8192]; /* its diagnostics */
};

/* Compiles `body` (a function body using `v`, a struct ekvm_vcpu *) with
 * -fsyntax-only against our public header. */
static void compile(const char *body, struct compiled *c)
{
	const char *tmp = getenv("TMPDIR");
	char src[512], log[600];
	snprintf(src, sizeof(src), "%s/ekvm-ioctl-XXXXXX.c", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemps(src, 2);
	REQUIRE(fd >= 0);
	FILE *f = fdopen(fd, "w");
	REQUIRE(f != NULL);
	fprintf(f,
		"#include <ember/kvm.h>\n"
		"__attribute__((unused)) static int f(struct ekvm_vcpu *v)\n"
		"{\n%s\n}\n",
		body);
	fclose(f);
	snprintf(log, sizeof(log), "%s.log", src);
	char cmd[2200];
	snprintf(cmd, sizeof(cmd), "%s -std=gnu11 -fsyntax-only -I'%s/include' '%s' > '%s' 2>&1",
		 EMBER_TEST_CC, EMBER_TEST_SRCDIR, src, log);
	int ws = system(cmd);
	REQUIRE(ws != -1 && WIFEXITED(ws));
	c->status = WEXITSTATUS(ws);
	f = fopen(log, "r");
	REQUIRE(f != NULL);
	size_t n = fread(c->out, 1, sizeof(c->out) - 1, f);
	c->out[n] = '\0';
	fclose(f);
	unlink(src);
	unlink(log);
	REQUIRE(c->status != 127); /* the compiler itself was found */
}

TEST(kvm_ioctl_size_check_accepts_right_size)
{
	struct compiled c;
	compile("struct kvm_regs r;\n"
		"struct kvm_userspace_memory_region m;\n"
		"(void)EKVM_IOCTL(ekvm_vcpu_ioctl_raw, v, KVM_SET_USER_MEMORY_REGION, &m);\n"
		"return EKVM_IOCTL(ekvm_vcpu_ioctl_raw, v, KVM_GET_REGS, &r);",
		&c);
	if (c.status != 0)
		TEST_FAIL("a right-size argument did not compile (%s):\n%s", EMBER_TEST_CC, c.out);
}

TEST(kvm_ioctl_size_check_rejects_wrong_size)
{
	static const char *const bodies[] = {
	    /* KVM_GET_REGS with struct kvm_sregs */
	    "struct kvm_sregs s;\n"
	    "return EKVM_IOCTL(ekvm_vcpu_ioctl_raw, v, KVM_GET_REGS, &s);",
	    /* KVM_SET_USER_MEMORY_REGION with a bare 64-bit value */
	    "uint64_t x = 0;\n"
	    "return EKVM_IOCTL(ekvm_vcpu_ioctl_raw, v, KVM_SET_USER_MEMORY_REGION, &x);",
	    /* KVM_GET_MSRS with an array of entries instead of struct kvm_msrs */
	    "struct kvm_msr_entry e[4];\n"
	    "return EKVM_IOCTL(ekvm_vcpu_ioctl_raw, v, KVM_GET_MSRS, &e);",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct compiled c;
		compile(bodies[i], &c);
		if (c.status == 0)
			TEST_FAIL("a wrong-size argument compiled:\n%s", bodies[i]);
		if (!strstr(c.out, ASSERT_MSG))
			TEST_FAIL("no \"" ASSERT_MSG "\" in the diagnostics of\n%s\n---\n%s",
				  bodies[i], c.out);
	}
}
