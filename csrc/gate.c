/*
 * gate.c - the quiesce point of a PCPU, as Linux quiesces a device before it
 * unbinds: every call on a PCPU enters through its busy flag, so whoever holds
 * that flag knows no call is in flight.  A migration freezes the PCPU (takes
 * the flag, closes the gate, lets it go): calls already inside have left, new
 * ones from other threads are refused with -EAGAIN and wait in Python until
 * the migration thaws it with a new epoch; context handles of an older epoch
 * are then refused with -ESTALE before anything they point to is touched.
 * A retired PCPU (its driver gone) refuses everyone with -ENODEV, so a thread
 * still holding its handle can never reach freed hardware.
 */
#include "vsw_internal.h"
#include <pthread.h>
#include <sched.h>
#include <string.h>

static uint64_t self_token(void) { return (uint64_t)pthread_self(); }

/* Takes the busy flag whatever the gate says: waits for the call inside to leave. */
static void hold(struct vsw_pcpu *p)
{
    for (unsigned spins = 0; __atomic_exchange_n(&p->busy, 1, __ATOMIC_ACQUIRE); spins++) {
        if (spins % 64 == 63)
            sched_yield();      /* a long run() is inside: let it have the core */
        else
            vsw_cpu_relax();
    }
}

int vsw_pcpu_gate_closed(struct vsw_pcpu *p)
{
    int gate = __atomic_load_n(&p->gate, __ATOMIC_ACQUIRE);
    if (gate == VSW_GATE_FROZEN && p->freezer == self_token())
        return 0;
    if (gate == VSW_GATE_OPEN)
        return 0;
    vsw_pcpu_leave(p);
    return gate == VSW_GATE_RETIRED ? -ENODEV : -EAGAIN;
}

int vsw_pcpu_freeze(struct vsw_pcpu *p)
{
    if (!p)
        return -EINVAL;
    hold(p);
    int gate = p->gate;
    if (gate != VSW_GATE_RETIRED) {
        /* a PCPU left frozen by an earlier migration (still parked) is taken over:
         * the caller serialises migrations */
        p->freezer = self_token();
        __atomic_store_n(&p->gate, VSW_GATE_FROZEN, __ATOMIC_RELEASE);
    }
    vsw_pcpu_leave(p);
    return gate == VSW_GATE_RETIRED ? -ENODEV : 0;
}

int vsw_pcpu_thaw(struct vsw_pcpu *p, uint64_t epoch)
{
    if (!p)
        return -EINVAL;
    hold(p);
    int r = 0;
    if (p->gate == VSW_GATE_RETIRED) {
        r = -ENODEV;
    } else if (p->gate == VSW_GATE_FROZEN && p->freezer != self_token()) {
        r = -EPERM;             /* somebody else's migration */
    } else {
        p->epoch = epoch;
        memset(p->memo, 0, sizeof(p->memo));   /* paths may have been replaced at the same address */
        __atomic_store_n(&p->gate, VSW_GATE_OPEN, __ATOMIC_RELEASE);
    }
    vsw_pcpu_leave(p);
    return r;
}

int vsw_pcpu_rekey(struct vsw_pcpu *p, uint64_t epoch)
{
    if (!p)
        return -EINVAL;
    hold(p);
    int r = 0;
    if (p->gate != VSW_GATE_FROZEN || p->freezer != self_token()) {
        r = -EPERM;             /* only the migration that froze it */
    } else {
        p->epoch = epoch;
        memset(p->memo, 0, sizeof(p->memo));
    }
    vsw_pcpu_leave(p);
    return r;
}

int vsw_pcpu_retire(struct vsw_pcpu *p)
{
    if (!p)
        return -EINVAL;
    hold(p);
    __atomic_store_n(&p->gate, VSW_GATE_RETIRED, __ATOMIC_RELEASE);
    vsw_pcpu_leave(p);
    return 0;
}

uint64_t vsw_pcpu_owner(const struct vsw_pcpu *p) { return p ? __atomic_load_n(&p->owner, __ATOMIC_ACQUIRE) : 0; }
