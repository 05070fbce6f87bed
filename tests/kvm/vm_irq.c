/* tests/kvm/vm_irq.c - in-kernel irqchip, IRQ lines, GSI routing, MSI, PIT and irqfd. */
#include "vm_realmode.h"

#include <sys/eventfd.h>
#include <time.h>

#define LAPIC_SVR 0xf0
#define LAPIC_IRR 0x200

static void irq_open(struct rm_vm *t)
{
	rm_open(t);
	REQUIRE_OK(ekvm_vm_create_irqchip(t->vm));
}

static struct kvm_pic_state get_pic(struct rm_vm *t, uint32_t id)
{
	struct kvm_irqchip chip;
	memset(&chip, 0xa5, sizeof(chip));
	chip.chip_id = id;
	REQUIRE_OK(ekvm_vm_get_irqchip(t->vm, &chip));
	return chip.chip.pic;
}

static void set_pic(struct rm_vm *t, uint32_t id, const struct kvm_pic_state *pic)
{
	struct kvm_irqchip chip;
	memset(&chip, 0, sizeof(chip));
	chip.chip_id = id;
	chip.chip.pic = *pic;
	REQUIRE_OK(ekvm_vm_set_irqchip(t->vm, &chip));
}

/* Master PIC initialised like a BIOS would (vectors 0x20..), with the given
 * mask, nothing pending. */
static void pic_init(struct rm_vm *t, uint8_t imr)
{
	struct kvm_pic_state pic = get_pic(t, KVM_IRQCHIP_PIC_MASTER);
	pic.irr = pic.isr = pic.last_irr = 0;
	pic.imr = imr;
	pic.irq_base = 0x20;
	pic.init_state = 0;
	pic.elcr = 0;
	set_pic(t, KVM_IRQCHIP_PIC_MASTER, &pic);
}

static uint8_t pic_irr(struct rm_vm *t)
{
	return get_pic(t, KVM_IRQCHIP_PIC_MASTER).irr;
}

KVM_TEST(vm_irqchip_pic_round_trip)
{
	struct rm_vm t;
	irq_open(&t);
	/* KVM_CREATE_IRQCHIP twice: -EEXIST */
	CHECK_ERR(ekvm_vm_create_irqchip(t.vm), -EEXIST);

	for (uint32_t id = KVM_IRQCHIP_PIC_MASTER; id <= KVM_IRQCHIP_PIC_SLAVE; id++) {
		struct kvm_pic_state pic = get_pic(&t, id);
		pic.irq_base = (uint8_t)(0x30 + 8 * id);
		pic.imr = (uint8_t)(0x5a ^ id);
		pic.irr = 0;
		pic.isr = 0;
		pic.priority_add = 3;
		pic.read_reg_select = 1;
		pic.special_mask = 0;
		pic.auto_eoi = 1;
		pic.init4 = 1;
		pic.elcr = (uint8_t)(id == 0 ? 0x20 : 0x0c); /* only maskable bits */
		pic.elcr_mask = (uint8_t)(id == 0 ? 0xf8 : 0xde);
		set_pic(&t, id, &pic);
		struct kvm_pic_state back = get_pic(&t, id);
		CHECK(memcmp(&back, &pic, sizeof(pic)) == 0);
		CHECK_EQ(back.irq_base, 0x30 + 8 * id);
		CHECK_EQ(back.imr, 0x5a ^ id);
		CHECK_EQ(back.priority_add, 3);
	}
	/* the two PICs are distinct chips */
	CHECK(get_pic(&t, KVM_IRQCHIP_PIC_MASTER).irq_base !=
	      get_pic(&t, KVM_IRQCHIP_PIC_SLAVE).irq_base);

	/* an unknown chip id: -EINVAL */
	struct kvm_irqchip chip;
	memset(&chip, 0, sizeof(chip));
	chip.chip_id = 7;
	CHECK_ERR(ekvm_vm_get_irqchip(t.vm, &chip), -EINVAL);
	CHECK_ERR(ekvm_vm_set_irqchip(t.vm, &chip), -EINVAL);
	rm_close(&t);
}

KVM_TEST(vm_irqchip_ioapic_round_trip)
{
	struct rm_vm t;
	irq_open(&t);
	struct kvm_irqchip chip;
	memset(&chip, 0, sizeof(chip));
	chip.chip_id = KVM_IRQCHIP_IOAPIC;
	REQUIRE_OK(ekvm_vm_get_irqchip(t.vm, &chip));
	struct kvm_ioapic_state io = chip.chip.ioapic;
	/* reset state: at the standard address, every pin masked */
	CHECK_EQ(io.base_address, 0xfec00000);
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		CHECK(io.redirtbl[i].fields.mask == 1);

	io.id = 3;
	io.ioregsel = 0x10;
	io.irr = 0;
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		io.redirtbl[i].bits = (uint64_t)(i & 1) << 56 | 1u << 16 | (uint64_t)(0x40 + i);
	io.redirtbl[9].bits = 1ull << 56 | 1u << 15 | 1u << 16 | 0x99; /* level, masked */
	chip.chip.ioapic = io;
	REQUIRE_OK(ekvm_vm_set_irqchip(t.vm, &chip));
	memset(&chip.chip, 0, sizeof(chip.chip));
	REQUIRE_OK(ekvm_vm_get_irqchip(t.vm, &chip));
	struct kvm_ioapic_state *back = &chip.chip.ioapic;
	CHECK_EQ(back->id, 3);
	CHECK_EQ(back->ioregsel, 0x10);
	CHECK_EQ(back->base_address, 0xfec00000);
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		CHECK_EQ(back->redirtbl[i].bits, io.redirtbl[i].bits);
	CHECK_EQ(back->redirtbl[9].fields.vector, 0x99);
	CHECK_EQ(back->redirtbl[9].fields.trig_mode, 1);
	rm_close(&t);
}

KVM_TEST(vm_irq_line_and_status)
{
	struct rm_vm t;
	irq_open(&t);
	pic_init(&t, (uint8_t) ~(1u << 4)); /* only IRQ 4 unmasked */
	int32_t status = 12345;

	/* a rising edge on an unmasked line: delivered (status > 0), IRR set */
	CHECK_OK(ekvm_vm_irq_line_status(t.vm, 4, 1, &status));
	CHECK(status > 0);
	CHECK(pic_irr(&t) & (1u << 4));
	REQUIRE_OK(ekvm_vm_irq_line(t.vm, 4, 0));
	/* again while the first is still pending: coalesced (status 0) */
	status = 12345;
	CHECK_OK(ekvm_vm_irq_line_status(t.vm, 4, 1, &status));
	CHECK_EQ(status, 0);
	REQUIRE_OK(ekvm_vm_irq_line(t.vm, 4, 0));

	/* a line masked in both the PIC and the IOAPIC: status < 0 */
	status = 12345;
	ekvm_vm_irq_line_status(t.vm, 5, 1, &status);
	CHECK(status < 0);
	/* the PIC latches the request anyway */
	CHECK(pic_irr(&t) & (1u << 5));
	REQUIRE_OK(ekvm_vm_irq_line(t.vm, 5, 0));

	/* plain KVM_IRQ_LINE raises IRR too */
	pic_init(&t, 0);
	REQUIRE_OK(ekvm_vm_irq_line(t.vm, 3, 1));
	CHECK_EQ(pic_irr(&t), 1u << 3);
	REQUIRE_OK(ekvm_vm_irq_line(t.vm, 3, 0));
	rm_close(&t);
}

KVM_TEST(vm_irq_line_needs_irqchip)
{
	struct rm_vm t;
	rm_open(&t);
	/* without an in-kernel irqchip these are refused with -ENXIO */
	CHECK_ERR(ekvm_vm_irq_line(t.vm, 4, 1), -ENXIO);
	struct kvm_irqchip chip;
	memset(&chip, 0, sizeof(chip));
	CHECK_ERR(ekvm_vm_get_irqchip(t.vm, &chip), -ENXIO);
	CHECK_ERR(ekvm_vm_set_irqchip(t.vm, &chip), -ENXIO);
	rm_close(&t);
}

static struct kvm_irq_routing *routing_alloc(uint32_t nr)
{
	struct kvm_irq_routing *r = calloc(1, sizeof(*r) + nr * sizeof(r->entries[0]));
	REQUIRE(r != NULL);
	r->nr = nr;
	return r;
}

KVM_TEST(vm_gsi_routing)
{
	struct rm_vm t;
	irq_open(&t);
	pic_init(&t, 0);
	struct kvm_irq_routing *r = routing_alloc(2);
	/* GSI 10 -> master PIC pin 4; GSI 11 -> an MSI */
	r->entries[0].gsi = 10;
	r->entries[0].type = KVM_IRQ_ROUTING_IRQCHIP;
	r->entries[0].u.irqchip.irqchip = KVM_IRQCHIP_PIC_MASTER;
	r->entries[0].u.irqchip.pin = 4;
	r->entries[1].gsi = 11;
	r->entries[1].type = KVM_IRQ_ROUTING_MSI;
	r->entries[1].u.msi.address_lo = 0xfee00000;
	r->entries[1].u.msi.data = 0x41;
	REQUIRE_OK(ekvm_vm_set_gsi_routing(t.vm, r));

	/* GSI 10 now reaches pin 4 */
	REQUIRE_OK(ekvm_vm_irq_line(t.vm, 10, 1));
	REQUIRE_OK(ekvm_vm_irq_line(t.vm, 10, 0));
	CHECK_EQ(pic_irr(&t), 1u << 4);
	/* the table replaced the default one: GSI 4 goes nowhere now */
	pic_init(&t, 0);
	int32_t status = 12345;
	ekvm_vm_irq_line_status(t.vm, 4, 1, &status);
	CHECK(status < 0);
	CHECK_EQ(pic_irr(&t), 0);

	/* invalid tables: -EINVAL, and the current table stays */
	r->flags = 1;
	CHECK_ERR(ekvm_vm_set_gsi_routing(t.vm, r), -EINVAL);
	r->flags = 0;
	r->entries[0].u.irqchip.pin = 8; /* a PIC has pins 0..7 */
	CHECK_ERR(ekvm_vm_set_gsi_routing(t.vm, r), -EINVAL);
	r->entries[0].u.irqchip.pin = 4;
	r->entries[1].type = 0x7777;
	CHECK_ERR(ekvm_vm_set_gsi_routing(t.vm, r), -EINVAL);
	REQUIRE_OK(ekvm_vm_irq_line(t.vm, 10, 1));
	REQUIRE_OK(ekvm_vm_irq_line(t.vm, 10, 0));
	CHECK_EQ(pic_irr(&t), 1u << 4);

	/* an empty table is allowed */
	r->nr = 0;
	CHECK_OK(ekvm_vm_set_gsi_routing(t.vm, r));
	free(r);
	rm_close(&t);
}

static uint32_t lapic_reg(const struct kvm_lapic_state *s, unsigned off)
{
	uint32_t v;
	memcpy(&v, &s->regs[off], 4);
	return v;
}

static void lapic_set_reg(struct kvm_lapic_state *s, unsigned off, uint32_t v)
{
	memcpy(&s->regs[off], &v, 4);
}

static bool lapic_irr_has(struct rm_vm *t, unsigned vector)
{
	struct kvm_lapic_state s;
	REQUIRE_OK(ekvm_vcpu_get_lapic(t->vcpu, &s));
	return lapic_reg(&s, LAPIC_IRR + 0x10 * (vector / 32)) & (1u << (vector % 32));
}

KVM_TEST(vm_signal_msi)
{
	struct rm_vm t;
	rm_open(&t);
	struct kvm_msi msi = {.address_lo = 0xfee00000, .data = 0x41};
	/* no in-kernel irqchip: -EINVAL */
	CHECK_ERR(ekvm_vm_signal_msi(t.vm, &msi), -EINVAL);
	REQUIRE_OK(ekvm_vm_create_irqchip(t.vm));
	rm_add_vcpu(&t);

	/* after reset the LAPIC is software-disabled: the MSI is blocked (0) */
	CHECK_EQ(ekvm_vm_signal_msi(t.vm, &msi), 0);
	CHECK(!lapic_irr_has(&t, 0x41));

	struct kvm_lapic_state s;
	REQUIRE_OK(ekvm_vcpu_get_lapic(t.vcpu, &s));
	lapic_set_reg(&s, LAPIC_SVR, 0x1ff); /* APIC enabled, spurious vector 0xff */
	REQUIRE_OK(ekvm_vcpu_set_lapic(t.vcpu, &s));
	/* delivered to APIC 0: > 0 and the vector pending in IRR */
	CHECK(ekvm_vm_signal_msi(t.vm, &msi) > 0);
	CHECK(lapic_irr_has(&t, 0x41));
	CHECK(!lapic_irr_has(&t, 0x42));

	/* unknown flags: -EINVAL */
	msi.flags = 0x80;
	CHECK_ERR(ekvm_vm_signal_msi(t.vm, &msi), -EINVAL);
	rm_close(&t);
}

KVM_TEST(vm_pit2_round_trip)
{
	struct rm_vm t;
	irq_open(&t);
	REQUIRE_OK(ekvm_vm_create_pit2(t.vm, KVM_PIT_SPEAKER_DUMMY));
	CHECK_ERR(ekvm_vm_create_pit2(t.vm, 0), -EEXIST);

	struct kvm_pit_state2 st;
	memset(&st, 0xa5, sizeof(st));
	REQUIRE_OK(ekvm_vm_get_pit2(t.vm, &st));
	/* reset state: count 0 means 0x10000; gate high on channels 0 and 1 */
	for (int i = 0; i < 3; i++)
		CHECK_EQ(st.channels[i].count, 0x10000);
	CHECK_EQ(st.channels[0].gate, 1);
	CHECK_EQ(st.channels[1].gate, 1);
	CHECK_EQ(st.channels[2].gate, 0);

	static const uint32_t count[3] = {0x4000, 0x1234, 0x2345};
	static const uint8_t mode[3] = {0, 2, 3};
	for (int i = 0; i < 3; i++) {
		st.channels[i].count = count[i];
		st.channels[i].mode = mode[i];
		st.channels[i].rw_mode = 3; /* lobyte/hibyte */
		st.channels[i].bcd = 0;
		st.channels[i].gate = 1;
		st.channels[i].read_state = 3;
		st.channels[i].write_state = 3;
		st.channels[i].count_latched = 0;
		st.channels[i].status_latched = 0;
	}
	st.flags = 0;
	REQUIRE_OK(ekvm_vm_set_pit2(t.vm, &st));

	struct kvm_pit_state2 back;
	memset(&back, 0, sizeof(back));
	REQUIRE_OK(ekvm_vm_get_pit2(t.vm, &back));
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(back.channels[i].count, count[i]);
		CHECK_EQ(back.channels[i].mode, mode[i]);
		CHECK_EQ(back.channels[i].rw_mode, 3);
		CHECK_EQ(back.channels[i].gate, 1);
		CHECK_EQ(back.channels[i].read_state, 3);
		CHECK_EQ(back.channels[i].write_state, 3);
	}
	CHECK_EQ(back.flags, 0);
	rm_close(&t);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* irqfd injection runs from a kernel work item: wait up to 2 s for IRR. */
static bool wait_pic_irr(struct rm_vm *t, uint8_t bit)
{
	for (int i = 0; i < 2000; i++) {
		if (pic_irr(t) & bit)
			return true;
		sleep_ms(1);
	}
	return false;
}

static void efd_signal(int fd)
{
	uint64_t one = 1;
	REQUIRE(write(fd, &one, sizeof(one)) == sizeof(one));
}

KVM_TEST(vm_irqfd)
{
	struct rm_vm t;
	irq_open(&t);
	pic_init(&t, 0);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	REQUIRE(efd >= 0);

	REQUIRE_OK(ekvm_vm_irqfd(t.vm, efd, 4, -1));
	/* the same eventfd twice: -EBUSY */
	CHECK_ERR(ekvm_vm_irqfd(t.vm, efd, 4, -1), -EBUSY);
	CHECK_EQ(pic_irr(&t), 0);
	efd_signal(efd);
	CHECK(wait_pic_irr(&t, 1u << 4));
	CHECK_EQ(pic_irr(&t) & ~(1u << 4), 0);

	/* removed: a signal no longer raises the line */
	REQUIRE_OK(ekvm_vm_irqfd_remove(t.vm, efd, 4));
	pic_init(&t, 0);
	efd_signal(efd);
	sleep_ms(100);
	CHECK_EQ(pic_irr(&t), 0);
	/* and it can be registered again, for another GSI */
	REQUIRE_OK(ekvm_vm_irqfd(t.vm, efd, 6, -1));
	efd_signal(efd);
	CHECK(wait_pic_irr(&t, 1u << 6));
	REQUIRE_OK(ekvm_vm_irqfd_remove(t.vm, efd, 6));

	/* a resampling irqfd (level-triggered) asserts the line as well */
	int rfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	REQUIRE(rfd >= 0);
	pic_init(&t, 0);
	REQUIRE_OK(ekvm_vm_irqfd(t.vm, efd, 5, rfd));
	efd_signal(efd);
	CHECK(wait_pic_irr(&t, 1u << 5));
	REQUIRE_OK(ekvm_vm_irqfd_remove(t.vm, efd, 5));

	/* fds that are not eventfds */
	CHECK_ERR(ekvm_vm_irqfd(t.vm, -1, 4, -1), -EINVAL); /* checked by the library */
	int pipefd[2];
	REQUIRE(pipe(pipefd) == 0);
	CHECK_ERR(ekvm_vm_irqfd(t.vm, pipefd[0], 4, -1), -EINVAL);
	close(pipefd[0]);
	close(pipefd[1]);
	close(rfd);
	close(efd);
	rm_close(&t);
}
