/* vmm/devstate.h - every device of the board saved and loaded as one state (for snapshots). */
#ifndef EMBER_VMM_DEVSTATE_H
#define EMBER_VMM_DEVSTATE_H

#include <ember/vmm.h>

#include "../lib/io/state.h"

/*
 * Writes the state of every device of vm's board, in the board's fixed order
 * (legacy devices, then each virtio device in the device list's order), as
 * one "devices" section of lib/io/state.h: the list of device names, then
 * one section per device. The VM must be paused (ember_vm_pause: no vCPU
 * in a handler, virtio quiesced: no request in flight). Host resources
 * (image paths, tap names, socket paths) are not saved here: the VMM
 * rebuilds them from the configuration.
 * Returns 0, or the writer's error (-ENOMEM, -E2BIG), -EBUSY (a device
 * still has a request in flight), -EINVAL (no board). Thread: any, while the
 * VM stays paused.
 */
int vmm_devices_save(struct ember_vm *vm, struct vmm_state_w *w);

/*
 * Reads what vmm_devices_save wrote into vm, freshly built from the same
 * configuration, before its vCPUs start. Refuses, with a message in err and
 * the devices left as they were, a device list that differs from the
 * board's (named), a disk whose image changed size since the save (named),
 * and any malformed or impossible section (the reader's detail).
 * Nothing the guest can see happens before every device loaded; then the
 * virtio devices act on the load (virtio-vsock sends its transport reset
 * event; a pending interrupt is raised again through its irqfd): so restore
 * the interrupt controllers (ehv_vm_restore_state) and guest memory first.
 * Every queue is run once when the VM starts (chains a device held are
 * taken again). Returns 0, or -EINVAL (malformed, mismatched), -EBUSY (the
 * VM has run), -ENOMEM. Thread: the caller's, vCPUs not started.
 */
int vmm_devices_load(struct ember_vm *vm, struct vmm_state_r *r, struct ember_error *err);

#endif /* EMBER_VMM_DEVSTATE_H */
