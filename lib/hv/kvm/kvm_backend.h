/* lib/hv/kvm/kvm_backend.h - private interface of the KVM backend (the exit mapping, for tests). */
#ifndef EMBER_LIB_HV_KVM_BACKEND_H
#define EMBER_LIB_HV_KVM_BACKEND_H

#include "../hv_internal.h"

#include <ember/kvm.h>

/*
 * Maps a decoded KVM exit onto a neutral one and fills the pending answer
 * (pointers into the run area that ke points into). A pure function of *ke:
 * no KVM call. Returns 0, or -EIO for an exit that cannot be handled safely
 * (an I/O exit whose data the binding refused to point at).
 */
int ehvi_kvm_map_exit(const struct ekvm_exit *ke, struct ehv_exit *e, struct ehvi_pending *p);

#endif
