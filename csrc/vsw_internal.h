/* vsw_internal.h - object layouts shared by the C core's files; not ABI. */
#ifndef VSW_INTERNAL_H
#define VSW_INTERNAL_H

#include "vsw.h"
#include "vsw_test.h"     /* the core implements the test-only calls too */
#include <errno.h>
#include <stdbool.h>

#define VSW_ALIGN 64
/* bytes: room for any layout's context (each layout asserts it fits) */
#define VSW_MAX_CONTEXT 8192
#define VSW_PS_PER_US 1000000ull

struct vsw_workload_def {
    const char *const *gprs;    /* general registers, NULL-terminated */
    const char *pc;
    const char *flags;
    uint64_t flag_zero, flag_sign, flag_carry, flag_fixed;
    const char *const *vectors; /* vector registers, NULL-terminated */
    const char *const *sysregs; /* touched now and then, NULL-terminated */
};

struct vsw_layout_def {
    const char *name;
    uint32_t id;
    uint32_t version;
    uint32_t size;
    uint32_t ngroups;
    uint32_t nfields;
    uint32_t uapi_checked;
    const struct vsw_group_info *groups;
    const struct vsw_field_info *fields;
    void (*reset)(uint8_t *regs);
    const struct vsw_workload_def *workload;
};

extern const struct vsw_layout_def vsw_layout_def_x86_64;
extern const struct vsw_layout_def vsw_layout_def_aarch64;
const struct vsw_layout_def *vsw_layout_get(uint32_t id);
int vsw_layout_field_index(const struct vsw_layout_def *l, const char *name);
static inline uint32_t vsw_layout_all(const struct vsw_layout_def *l)
{
    return l->ngroups == 32 ? 0xffffffffu : (1u << l->ngroups) - 1;
}

/* Integrity check of a bank group, computed over the bytes as they move (copy_sum.h). */
struct vsw_check {
    uint64_t lane[8];
};
/* Copies groups first..last (adjacent) and records each one's check in rec[g]. */
void vsw_copy_groups(uint8_t *dst, const uint8_t *src, const struct vsw_group_info *groups, uint32_t first,
                     uint32_t last, struct vsw_check *rec);

static inline void vsw_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* A tiny spinlock for state shared by several PCPUs (bus counters, slot claims). */
static inline void vsw_lock(int *l)
{
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(l, __ATOMIC_RELAXED))
            vsw_cpu_relax();
}
static inline void vsw_unlock(int *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

/* Counts of switches' transactions, one cache line per shard: PCPUs switching
 * at once on one bus each add to their own shard, so no line bounces between
 * their cores; reading sums the shards. */
#define VSW_BUS_SHARDS 64
struct vsw_bus_shard {
    uint64_t transactions, bytes, busy_cycles;
} __attribute__((aligned(VSW_ALIGN)));
struct vsw_bus {
    struct vsw_bus_shard shard[VSW_BUS_SHARDS];
    struct vsw_bus_params p;
    struct vsw_bus_counters c;  /* counted under the lock (vsw_bus_charge) */
    uint64_t rng;
    double log_u;               /* ln(utilisation), for the geometric wait */
    uint64_t other_cycles;      /* cycles one transaction of another master holds the bus */
    double mean_wait_cycles;    /* expected arbitration wait per transaction */
    double ps_per_cycle;
    uint64_t free_at_ps;        /* arbitration: when the bus is next free (masters > 1) */
    uint32_t version;           /* bumped by every configure */
    int lock;
};
/* Costs of n transactions of `bytes` each, waits drawn under the bus lock; counted
 * (vsw_bus_charge) or only priced (count false). */
uint64_t vsw_bus_charge(struct vsw_bus *bus, uint32_t n, uint32_t bytes, uint64_t *wait_ps);
uint64_t vsw_bus_cost(struct vsw_bus *bus, uint32_t n, uint32_t bytes, uint64_t *wait_ps, bool count);
/* Cycles of one transaction without waiting (setup + beats), and counting
 * transactions whose cost was computed so (point-to-point buses). */
uint64_t vsw_bus_cycles(const struct vsw_bus *bus, uint32_t bytes);
/* A transfer of busy_ps from start_ps on a bus several PCPUs share: it waits
 * until the bus is free (first come, first served) and holds it; returns the wait. */
uint64_t vsw_bus_arbitrate(struct vsw_bus *bus, uint64_t start_ps, uint64_t busy_ps);
void vsw_bus_count(struct vsw_bus *bus, uint32_t shard, uint32_t transactions, uint64_t bytes, uint64_t busy_cycles);
/* Expected cost of n such transactions, not counted (prices the path not taken). */
uint64_t vsw_bus_expect(const struct vsw_bus *bus, uint32_t n, uint32_t bytes);
uint64_t vsw_bus_cycles_to_ps(const struct vsw_bus *bus, uint64_t cycles);

struct vsw_slot {
    uint64_t owner;
    uint64_t generation;
    uint32_t valid_mask;
    uint32_t bank_mask;
    uint32_t resident;          /* VSW_SLOT_SAVED, LOADING (claimed by a switch in flight), LOADED (running
                                 * on a PCPU) or HELD (by an accessor) */
    uint32_t changed;           /* groups committed since the slot was filled (a cache's write-back) */
    uint8_t *bank[2];
    struct vsw_check *sum[2];   /* per bank, per group */
    void *mem;
};

struct vsw_store {
    const struct vsw_layout_def *L;
    uint64_t capacity;
    uint32_t nslots;            /* slots that fit */
    uint32_t used;
    struct vsw_slot **slots;    /* nslots entries, NULL when free */
    uint32_t *free_stack;       /* free slot numbers (LIFO; slot 0 first in a new store): O(1) alloc and free */
    uint32_t nfree;
    int lock;                   /* claims slots for switches */
};
enum { VSW_SLOT_SAVED = 0, VSW_SLOT_LOADED = 1, VSW_SLOT_HELD = 2, VSW_SLOT_LOADING = 3 };
static inline bool vsw_slot_on_pcpu(uint32_t resident)
{
    return resident == VSW_SLOT_LOADED || resident == VSW_SLOT_LOADING;
}
/* Looks a slot up and checks its owner: -ERANGE, -ENOENT, -EACCES. */
int vsw_store_slot(const struct vsw_store *s, uint32_t slot, uint64_t owner, struct vsw_slot **out);
/* Claims a slot for loading onto a PCPU: -EBUSY when it is loaded elsewhere; waits
 * out an accessor (a bounded copy) rather than failing because one read it. */
int vsw_store_claim(struct vsw_store *s, struct vsw_slot *slot);
void vsw_store_release(struct vsw_store *s, struct vsw_slot *slot);
void vsw_slot_commit(struct vsw_slot *slot, uint32_t mask);
/* Holds a saved slot for the caller (waits out an accessor; -EBUSY while loaded). */
int vsw_store_hold(struct vsw_slot *slot);
/* Copies the committed groups of mask into regs, checking each: -EBADMSG on a corrupt bank. */
int vsw_slot_read_checked(const struct vsw_layout_def *L, const struct vsw_slot *slot, uint8_t *regs, uint32_t mask);
/* Writes the groups of mask from regs into the shadow banks, with their checks (nothing committed). */
void vsw_slot_write_shadow(const struct vsw_layout_def *L, struct vsw_slot *slot, const uint8_t *regs, uint32_t mask);

struct vsw_trace {
    uint32_t capacity;
    uint64_t head;
    uint64_t dropped;
    struct vsw_trace_record *rec;
};
void vsw_trace_put(struct vsw_trace *t, const struct vsw_trace_record *r);

struct vsw_path {
    uint32_t kind;
    uint32_t version;           /* bumped by every configure: invalidates PCPUs' memos */
    struct vsw_store *store;
    struct vsw_bus *bus;
    struct vsw_bus *baseline;   /* memory bus that prices the prior art; may be NULL */
    uint32_t baseline_version;  /* of the bus when baseline_ps was computed */
    uint64_t baseline_ps[VSW_MAX_GROUPS]; /* expected prior-art cost per group */
    struct vsw_mover_params mp;
    struct vsw_path_limits lim;
    uint32_t fault_kind;
    uint32_t fault_unit;
};
/* One transfer: moves the groups of mask between the register file and a slot.
 * Returns 0 or -EIO (injected fault) / -EBADMSG (corrupt bank); a save commits
 * nothing here.  Costs are charged separately, once the whole switch succeeded. */
struct vsw_transfer {
    uint64_t bytes;
    uint32_t failed_group;      /* on error: the last group the transfer touched */
};
int vsw_path_save(struct vsw_path *path, uint8_t *regs, struct vsw_slot *slot, uint32_t mask,
                  struct vsw_transfer *x);
int vsw_path_load(struct vsw_path *path, uint8_t *regs, struct vsw_slot *slot, struct vsw_transfer *x);
/* Transactions a switch owes a point-to-point bus, counted once at its end. */
struct vsw_tally {
    uint32_t transactions;
    uint64_t bytes;
    uint64_t cycles;
};
/* Charges a completed transfer to the path's bus and traces it from start_ps;
 * returns its modelled duration and the units it took. */
uint64_t vsw_path_charge(struct vsw_path *path, struct vsw_trace *t, uint32_t dir, uint32_t mask,
                         uint64_t start_ps, const struct vsw_trace_record *proto, uint32_t *units,
                         struct vsw_tally *tally);
/* Prior-art cost of moving mask over the path's baseline bus, at its expected contention. */
uint64_t vsw_path_baseline_ps(struct vsw_path *path, uint32_t mask);

/* What one direction of the last switch cost on a point-to-point path: the
 * same groups over the same path cost the same, so a PCPU reuses it. */
struct vsw_charge_memo {
    const struct vsw_path *path;
    uint32_t path_version, baseline_version;
    uint32_t mask, units;
    uint64_t bytes, cycles, ps, baseline_ps;
};

struct vsw_pcpu {
    const struct vsw_layout_def *L;
    struct vsw_charge_memo memo[2];     /* per direction */
    uint32_t cpu_mhz;
    uint32_t exit_entry_cycles;
    uint64_t half_exit_entry_ps;        /* of exit_entry_cycles at cpu_mhz: no division per switch */
    uint8_t *regs;
    uint64_t owner;
    uint32_t slot;
    uint32_t dirty;
    uint64_t now_ps;
    uint64_t switches;
    struct vsw_store *resident_store; /* where the running machine's slot lives */
    struct vsw_trace *trace;
    int busy;
    /* the quiesce gate (gate.c): VSW_GATE_OPEN, FROZEN (only `freezer` enters)
     * or RETIRED (nobody); `epoch` is what context handles must carry */
    int gate;
    uint64_t freezer;
    uint64_t epoch;
    /* the workload's registers, resolved from the layout by name */
    uint32_t ngpr, nvec, nsys;
    uint32_t gpr[32], vec[32], sys[4];
    uint32_t gpr_group, vec_group[32], sys_group[4];
    uint32_t pc, flags;
    uint32_t bus_shard;         /* where this PCPU counts its bus transactions */
} __attribute__((aligned(VSW_ALIGN))); /* its own cache lines: PCPUs switch at once on other cores */
/* A context handle (ctx.c); its fields are read by the switch (switch.c).
 * A cached handle's slot, home and policy state change under its cache's lock. */
#define VSW_NO_SLOT UINT32_MAX
struct vsw_ctx {
    struct vsw_path *path;
    uint32_t slot;              /* in the path's store; VSW_NO_SLOT while only at home */
    uint64_t owner;
    uint64_t epoch;
    struct vsw_cache *cache;    /* NULL: a plain handle of a slot */
    uint32_t home;              /* its slot in MEM; VSW_NO_SLOT until first needed */
    uint32_t pinned;
    uint32_t ref;               /* CLOCK's reference bit */
    uint32_t released;
    uint64_t next_use;          /* Belady: position of its next load in the plan */
    uint64_t plan_mark;
    uint64_t stamp;             /* LRU_TIME: model time of its last load */
    uint64_t seq;               /* LRU: its cache's count of loads at its last load (0: never loaded) */
    uint64_t hits;              /* loads that found it in the store: written only by the PCPU that claimed it */
    struct vsw_ctx *next, *prev; /* every handle of the cache, to sum the hits */
};
/* What making a switch's `to` resident took (cache.c), priced once the switch succeeded. */
struct vsw_fill {
    uint32_t result;            /* enum vsw_cache_result */
    uint32_t wb_mask, fetch_mask;
    uint64_t wb_bytes, fetch_bytes;
};
/* Claims x's slot for loading on PCPU p under the cache's lock, fetching it
 * first when it is not in the store (after vsw_cache_try_hit, cache.h, found no hit). */
int vsw_cache_claim(struct vsw_pcpu *p, struct vsw_ctx *x, struct vsw_slot **slot, uint32_t *index,
                    struct vsw_fill *fill);
/* The modelled cost of a fill's write-back and fetch from start_ps (storage-bus
 * transactions into tally, memory-bus ones counted on it). */
uint64_t vsw_cache_charge(struct vsw_cache *c, const struct vsw_fill *fill, uint64_t start_ps, struct vsw_trace *t,
                          const struct vsw_trace_record *proto, struct vsw_tally *tally);
enum { VSW_GATE_OPEN = 0, VSW_GATE_FROZEN = 1, VSW_GATE_RETIRED = 2 };
static inline void vsw_pcpu_leave(struct vsw_pcpu *p) { __atomic_store_n(&p->busy, 0, __ATOMIC_RELEASE); }
/* Entered past a closed gate: the freezer may go on; -EAGAIN (frozen) or -ENODEV (retired). */
int vsw_pcpu_gate_closed(struct vsw_pcpu *p);
/* -EAGAIN when another thread is inside a call on this PCPU or a migration has it frozen. */
static inline int vsw_pcpu_enter(struct vsw_pcpu *p)
{
    if (__atomic_exchange_n(&p->busy, 1, __ATOMIC_ACQUIRE))
        return -EAGAIN;
    if (__builtin_expect(__atomic_load_n(&p->gate, __ATOMIC_RELAXED) != VSW_GATE_OPEN, 0))
        return vsw_pcpu_gate_closed(p);
    return 0;
}
/* vsw_pcpu_enter() for calls that need a running machine: -ESRCH (not entered) while idle. */
static inline int vsw_pcpu_enter_running(struct vsw_pcpu *p)
{
    int r = vsw_pcpu_enter(p);
    if (r == 0 && !p->owner) {
        vsw_pcpu_leave(p);
        r = -ESRCH;
    }
    return r;
}
/* The switch by owners and slot numbers (switch.c), for the C benchmark loop only:
 * everything else switches through vsw_switch() and context handles. */
int vsw_switch_slots(struct vsw_pcpu *p, struct vsw_path *path, uint64_t from_owner, uint32_t to_slot,
                     uint64_t to_owner, struct vsw_switch_stats *st);
uint32_t vsw_group_mask_of(const struct vsw_layout_def *L, uint32_t offset, uint32_t len);

#endif
