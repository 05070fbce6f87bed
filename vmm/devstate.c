/* vmm/devstate.c - every device of the board saved and loaded as one state (devstate.h). */
#include "devstate.h"

#include "internal.h"
#include "virtio.h"
#include "vm.h"

#include "../devices/device.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * The layout:
 *   "devices" v1 { count:u16, count x name:str,
 *                  count x "device" v1 { name:str, the device's own sections } }
 * The name list comes first so that a load compares the whole list before it
 * touches any device; each device's section repeats its name so that a
 * message can say which device a bad section belongs to.
 */
#define DEVICES_VERSION 1
#define MAX_DEVICES	64
#define NAME_MAX_LEN	15 /* struct vmm_dev_desc.name */

static unsigned board_devices(struct ember_vm *vm, struct vmm_board_state_dev *devs, unsigned max)
{
	unsigned n = 0;
	while (n < max && vmm_board_state_device(vm, n, &devs[n]))
		n++;
	return n;
}

static int save_one(const struct vmm_board_state_dev *d, struct vmm_state_w *w)
{
	return d->virtio ? vmm_virtio_save(d->virtio, w) : dev_save(d->dev, w);
}

static int load_one(const struct vmm_board_state_dev *d, struct vmm_state_r *r)
{
	return d->virtio ? vmm_virtio_load(d->virtio, r) : dev_load(d->dev, r);
}

/* dev_lock held. */
static int save_locked(struct ember_vm *vm, struct vmm_state_w *w)
{
	struct vmm_board_state_dev devs[MAX_DEVICES];
	unsigned n = board_devices(vm, devs, MAX_DEVICES);
	if (n == 0)
		return -EINVAL;
	vmm_sw_begin(w, "devices", DEVICES_VERSION);
	vmm_sw_u16(w, (uint16_t)n);
	for (unsigned i = 0; i < n; i++)
		vmm_sw_str(w, devs[i].name);
	int rc = 0;
	for (unsigned i = 0; i < n && !rc; i++) {
		vmm_sw_begin(w, "device", 1);
		vmm_sw_str(w, devs[i].name);
		rc = save_one(&devs[i], w);
		vmm_sw_end(w);
	}
	vmm_sw_end(w);
	return rc ? rc : vmm_sw_error(w);
}

int vmm_devices_save(struct ember_vm *vm, struct vmm_state_w *w)
{
	if (!vm || !w || !vm->board)
		return -EINVAL;
	int state = atomic_load(&vm->state);
	if (state == EMBER_VM_RUNNING)
		return -EBUSY;
	pthread_mutex_lock(&vm->dev_lock);
	int rc = save_locked(vm, w);
	pthread_mutex_unlock(&vm->dev_lock);
	return rc;
}

/* Reads the name list and compares it with the board's. */
static int check_list(struct vmm_state_r *r, const struct vmm_board_state_dev *devs, unsigned n,
		      struct ember_error *err)
{
	unsigned count = vmm_sr_u16(r);
	if (vmm_sr_error(r))
		return vmm_errf(err, vmm_sr_error(r), "device state: %s", vmm_sr_detail(r));
	if (count > MAX_DEVICES)
		return vmm_errf(err, -EINVAL, "device state: %u devices (at most %u)", count,
				MAX_DEVICES);
	char names[MAX_DEVICES][NAME_MAX_LEN + 1];
	for (unsigned i = 0; i < count; i++)
		vmm_sr_str(r, names[i], sizeof(names[i]));
	if (vmm_sr_error(r))
		return vmm_errf(err, vmm_sr_error(r), "device state: %s", vmm_sr_detail(r));
	for (unsigned i = 0; i < count || i < n; i++) {
		if (i < count && i < n && !strcmp(names[i], devs[i].name))
			continue;
		if (i >= n)
			return vmm_errf(err, -EINVAL,
					"device state: the snapshot has a device %s this VM has "
					"not (its configuration differs)",
					names[i]);
		if (i >= count)
			return vmm_errf(err, -EINVAL,
					"device state: this VM has a device %s the snapshot has "
					"not (its configuration differs)",
					devs[i].name);
		return vmm_errf(err, -EINVAL,
				"device state: device %u is %s in the snapshot but %s in this VM "
				"(its configuration differs)",
				i, names[i], devs[i].name);
	}
	return 0;
}

/* The reader's message without the "devices/device" part of its path (the
 * message names the device itself). */
static const char *device_detail(const struct vmm_state_r *r)
{
	const char *d = vmm_sr_detail(r);
	static const char prefix[] = "devices/device";
	if (strncmp(d, prefix, sizeof(prefix) - 1))
		return d;
	d += sizeof(prefix) - 1;
	return *d == '/' ? d + 1 : *d == ':' && d[1] == ' ' ? d + 2 : d;
}

/* Loads each device's section; on a failure, says which device. Returns
 * how many devices were loaded in *done. */
static int load_devices(struct vmm_state_r *r, const struct vmm_board_state_dev *devs, unsigned n,
			unsigned *done, struct ember_error *err)
{
	for (*done = 0; *done < n; (*done)++) {
		const struct vmm_board_state_dev *d = &devs[*done];
		char name[NAME_MAX_LEN + 1];
		uint32_t version = 1;
		vmm_sr_begin(r, "device", &version);
		vmm_sr_str(r, name, sizeof(name));
		if (!vmm_sr_error(r) && strcmp(name, d->name))
			vmm_sr_fail(r, -EINVAL, "the section of %s where %s's was expected", name,
				    d->name);
		if (!vmm_sr_error(r))
			load_one(d, r);
		vmm_sr_end(r);
		if (vmm_sr_error(r))
			return vmm_errf(err, vmm_sr_error(r), "device state: %s%s%s%s: %s", d->name,
					d->detail ? " (" : "", d->detail ? d->detail : "",
					d->detail ? ")" : "", device_detail(r));
	}
	return 0;
}

/* Puts back the state saved in backup into the first n devices. */
static int roll_back(const void *backup, size_t len, const struct vmm_board_state_dev *devs,
		     unsigned n)
{
	struct vmm_state_r r;
	vmm_sr_init(&r, backup, len);
	uint32_t version = DEVICES_VERSION;
	vmm_sr_begin(&r, "devices", &version);
	unsigned count = vmm_sr_u16(&r);
	char name[NAME_MAX_LEN + 1];
	for (unsigned i = 0; i < count; i++)
		vmm_sr_str(&r, name, sizeof(name));
	unsigned done;
	struct ember_error ignored;
	return load_devices(&r, devs, n, &done, &ignored);
}

int vmm_devices_load(struct ember_vm *vm, struct vmm_state_r *r, struct ember_error *err)
{
	if (!vm || !r || !vm->board)
		return vmm_errf(err, -EINVAL, "device state: no VM to load into");
	if (atomic_load(&vm->state) != EMBER_VM_CREATED)
		return vmm_errf(err, -EBUSY, "device state: the VM has run already");
	struct vmm_board_state_dev devs[MAX_DEVICES];
	unsigned n = board_devices(vm, devs, MAX_DEVICES);
	uint32_t version = DEVICES_VERSION;
	if (vmm_sr_begin(r, "devices", &version))
		return vmm_errf(err, vmm_sr_error(r), "device state: %s", vmm_sr_detail(r));
	int rc = check_list(r, devs, n, err);
	if (rc)
		return rc;

	pthread_mutex_lock(&vm->dev_lock);
	/* what the devices hold now, to put back if a later one refuses */
	struct vmm_state_w bw;
	void *backup = NULL;
	size_t blen = 0;
	vmm_sw_init(&bw);
	rc = save_locked(vm, &bw);
	if (rc == 0)
		rc = vmm_sw_take(&bw, &backup, &blen);
	else
		vmm_sw_free(&bw);
	if (rc) {
		pthread_mutex_unlock(&vm->dev_lock);
		return vmm_errf(err, rc, "device state: cannot keep the devices' state: %s",
				strerror(-rc));
	}
	unsigned done = 0;
	rc = load_devices(r, devs, n, &done, err);
	if (rc == 0 && vmm_sr_end(r))
		rc = vmm_errf(err, vmm_sr_error(r), "device state: %s", vmm_sr_detail(r));
	if (rc && done && roll_back(backup, blen, devs, done < n ? done : n))
		vmm_err_prefix(err, rc, "device state: the devices could not be put back either");
	for (unsigned i = 0; rc == 0 && i < n; i++)
		if (devs[i].virtio)
			vmm_virtio_finish_load(devs[i].virtio);
	pthread_mutex_unlock(&vm->dev_lock);
	free(backup);
	return rc;
}
