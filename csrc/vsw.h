/*
 * vsw.h - the whole ABI of the pyvswitch C core: one header per mechanism,
 * included here in the order they build on each other.  Calls only tests and
 * benchmarks make (fault injection, timing) are in vsw_test.h, outside it.
 *
 * Models the hardware of patent CN105718300B: a PCPU register file, a dedicated
 * context store on a private storage bus, a burst mover, the shared memory bus
 * of the prior art, and the two switch paths that move register state over them.
 *
 * Conventions: opaque handles with explicit create/destroy; every call returns
 * >= 0 on success or -errno; no printing, no global mutable state, and no
 * allocation on the switch path.  Model time is kept in picoseconds.
 * Threads: a PCPU refuses a second concurrent caller with -EAGAIN (it is never
 * torn), and so does a PCPU a migration has frozen (gate.c); buses and stores
 * may be shared by PCPUs; a trace belongs to one PCPU; a slot is released only
 * after vsw_ctx_retire() has taken its context handle away from every PCPU.
 *
 * In each part, the block between the CDEF markers is fed verbatim to cffi's
 * cdef() (csrc/build_vsw.py, in this order, then vsw_test.h's), so it holds
 * only plain declarations.
 */
#ifndef VSW_H
#define VSW_H

#include <stddef.h>
#include <stdint.h>

#include "vsw_layout.h"
#include "vsw_image.h"
#include "vsw_bus.h"
#include "vsw_trace.h"
#include "vsw_store.h"
#include "vsw_path.h"
#include "vsw_pcpu.h"
#include "vsw_ctx.h"
#include "vsw_switch.h"
#include "vsw_schedule.h"
#include "vsw_cache.h"
#include "vsw_xsave.h"
#include "vsw_kvm.h"
#include "vsw_guests.h"

#endif
