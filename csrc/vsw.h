/*
 * vsw.h - the whole ABI of the pyvswitch C core.
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
 * The block between the CDEF markers is fed verbatim to cffi's cdef(), so it
 * holds only plain declarations.
 */
#ifndef VSW_H
#define VSW_H

#include <stddef.h>
#include <stdint.h>

/* CDEF-BEGIN */
#define VSW_MAX_GROUPS 32
#define VSW_IMAGE_MAGIC 0x49575356
#define VSW_IMAGE_HEADER_SIZE 40

enum vsw_layout_id { VSW_LAYOUT_X86_64 = 1, VSW_LAYOUT_AARCH64 = 2 };

/* Group flags: how the prior-art PCPU path stores a group to memory. */
enum vsw_group_flags { VSW_GROUP_SCALAR = 0, VSW_GROUP_VECTOR = 1 };

enum vsw_bus_kind { VSW_BUS_STORAGE = 0, VSW_BUS_MEMORY = 1 };
enum vsw_dir { VSW_DIR_SAVE = 0, VSW_DIR_LOAD = 1 };
enum vsw_path_kind { VSW_PATH_STORE = 0, VSW_PATH_MEMORY = 1 };
enum vsw_trace_kind { VSW_TRACE_SWITCH = 0, VSW_TRACE_EXIT_ENTRY = 1, VSW_TRACE_BURST = 2 };
enum vsw_fault_kind { VSW_FAULT_NONE = 0, VSW_FAULT_SAVE = 1, VSW_FAULT_LOAD = 2 };

struct vsw_layout_info {
    const char *name;
    uint32_t id;
    uint32_t version;
    uint32_t size;          /* bytes of register state (sum of the groups) */
    uint32_t ngroups;
    uint32_t nfields;
    uint32_t uapi_checked;  /* 1 when offsets were checked against <linux/kvm.h> at build time */
};

/* A group spans `size` bytes (a multiple of 64) from `offset`; its registers
 * (one KVM struct or XSAVE component) fill the first `used` bytes. */
struct vsw_group_info {
    const char *name;
    uint32_t offset;
    uint32_t size;
    uint32_t flags;
    uint32_t used;
};

struct vsw_field_info {
    const char *name;
    uint32_t group;
    uint32_t offset;        /* from the start of the register file */
    uint32_t size;
};

int vsw_layout_by_name(const char *name);
int vsw_layout_info(uint32_t layout, struct vsw_layout_info *out);
int vsw_layout_group(uint32_t layout, uint32_t index, struct vsw_group_info *out);
int vsw_layout_field(uint32_t layout, uint32_t index, struct vsw_field_info *out);
/* Writes the layout's structural constants (MSR indices, XCR numbers) into buf. */
int vsw_layout_reset(uint32_t layout, void *buf, size_t len);

uint32_t vsw_crc32c(uint32_t crc, const void *buf, size_t len);
int vsw_crc32c_hw(void);

/* ---- context image ---- */
/* The image's header as it lies in the bytes (little-endian, no padding: the
 * VSW_IMAGE_HEADER_SIZE bytes before the payload).  The CRC32C covers the header,
 * with crc zero, and the payload. */
struct vsw_image_header {
    uint32_t magic;         /* VSW_IMAGE_MAGIC */
    uint16_t layout;        /* enum vsw_layout_id */
    uint16_t version;       /* of the layout */
    uint32_t payload_size;
    uint32_t valid_mask;    /* groups the payload holds */
    uint64_t generation;
    uint64_t owner;
    uint32_t header_size;   /* VSW_IMAGE_HEADER_SIZE */
    uint32_t crc;
};
struct vsw_image_info {
    uint32_t magic;
    uint32_t layout;
    uint32_t version;
    uint32_t payload_size;
    uint32_t valid_mask;
    uint32_t header_size;
    uint64_t generation;
    uint64_t owner;
    uint32_t crc_stored;
    uint32_t crc_computed;
    uint64_t length;        /* bytes handed in */
};
/* Bytes an image of the layout takes. */
int vsw_image_size(uint32_t layout);

/* ---- buses: transaction-level cost model ---- */
struct vsw_bus_params {
    uint32_t kind;              /* enum vsw_bus_kind */
    uint32_t width_bytes;       /* bytes per beat */
    uint32_t clock_mhz;         /* beats per microsecond */
    uint32_t setup_cycles;      /* per transaction */
    uint32_t shared;            /* 1: other masters contend for it */
    double utilisation;         /* background load from other masters, 0 <= u < 1 */
    uint32_t other_bytes;       /* size of another master's transaction */
    uint64_t seed;
    uint32_t masters;           /* storage bus: PCPUs that take turns on it (0, 1: one, no arbitration) */
};
struct vsw_bus_counters {
    uint64_t transactions;
    uint64_t bytes;
    uint64_t busy_cycles;
    uint64_t wait_cycles;
};
struct vsw_bus;
int vsw_bus_create(const struct vsw_bus_params *params, struct vsw_bus **out);
void vsw_bus_destroy(struct vsw_bus *bus);
int vsw_bus_configure(struct vsw_bus *bus, const struct vsw_bus_params *params);
int vsw_bus_get_params(const struct vsw_bus *bus, struct vsw_bus_params *out);
int vsw_bus_counters(const struct vsw_bus *bus, struct vsw_bus_counters *out);
int vsw_bus_reset(struct vsw_bus *bus);
/* Issues one modelled transaction: returns its cost in picoseconds through *ps,
 * arbitration wait included, and counts it. */
int vsw_bus_transact(struct vsw_bus *bus, uint32_t bytes, uint64_t *wait_ps, uint64_t *ps);

/* ---- trace ring ---- */
struct vsw_trace_record {
    uint64_t seq;           /* switch number */
    uint64_t start_ps;
    uint64_t end_ps;
    uint64_t from_owner;
    uint64_t to_owner;
    uint32_t bytes;
    uint32_t count;         /* transactions this record stands for */
    uint8_t kind;           /* enum vsw_trace_kind */
    uint8_t bus;            /* enum vsw_bus_kind */
    uint8_t dir;            /* enum vsw_dir */
    uint8_t group;          /* first layout group the record covers */
    uint32_t reserved;
};
struct vsw_trace;
int vsw_trace_create(uint32_t capacity, struct vsw_trace **out);
void vsw_trace_destroy(struct vsw_trace *t);
/* Copies up to max records, oldest first; returns the number copied. */
int vsw_trace_read(const struct vsw_trace *t, struct vsw_trace_record *out, uint32_t max);
int vsw_trace_clear(struct vsw_trace *t);
/* Records lost to wrap-around since the last clear. */
int64_t vsw_trace_dropped(const struct vsw_trace *t);

/* ---- context store (SRAM model; also used for the MEM region of the prior art) ---- */
struct vsw_slot_info {
    uint64_t owner;
    uint64_t generation;
    uint32_t valid_mask;
    uint32_t bank_mask;     /* bit g: which bank holds group g */
    uint32_t resident;      /* 1 while loaded on a PCPU */
};
struct vsw_store;
int vsw_store_create(uint32_t layout, uint64_t capacity_bytes, struct vsw_store **out);
void vsw_store_destroy(struct vsw_store *s);
/* Bytes one slot occupies (two banks plus metadata), and slots that fit. */
int64_t vsw_store_slot_bytes(const struct vsw_store *s);
int vsw_store_capacity_slots(const struct vsw_store *s);
int vsw_store_used_slots(const struct vsw_store *s);
/* Returns the slot number (O(1): the slot freed last, its memory still warm; in
 * a new store slot 0, 1, ...); the slot starts as the layout's reset state.
 * One slot per owner is the caller's to keep. */
int vsw_store_alloc(struct vsw_store *s, uint64_t owner);
int vsw_store_free(struct vsw_store *s, uint32_t slot, uint64_t owner);
int vsw_store_slot_info(const struct vsw_store *s, uint32_t slot, uint64_t owner, struct vsw_slot_info *out);
/* Reads the committed context of a slot that is not loaded anywhere. */
int vsw_store_read(const struct vsw_store *s, uint32_t slot, uint64_t owner,
                   uint32_t offset, void *buf, uint32_t len);
/* Writes part of a saved context; atomic (shadow banks, one commit). */
int vsw_store_write(struct vsw_store *s, uint32_t slot, uint64_t owner,
                    uint32_t offset, const void *buf, uint32_t len);
int vsw_store_export(const struct vsw_store *s, uint32_t slot, uint64_t owner, void *out, size_t len);
/* Validates the whole image first; on any error the slot is untouched and *info says what was found. */
int vsw_store_import(struct vsw_store *s, uint32_t slot, uint64_t owner, const void *img, size_t len,
                     struct vsw_image_info *info);
/* Fault injection: flips a byte of the committed bank of group `group`. */
int vsw_store_corrupt(struct vsw_store *s, uint32_t slot, uint32_t group, uint32_t byte);

/* ---- paths: how contexts move between the register file and a store ----
 * VSW_PATH_STORE: the mover carries groups over the storage bus in bursts of at
 * most max_burst bytes, one run of adjacent groups per descriptor chain.
 * VSW_PATH_MEMORY: the prior art - the PCPU itself stores each register over the
 * shared memory bus into a MEM region (8 B per scalar store, 64 B per vector line). */
struct vsw_mover_params {
    uint32_t max_burst;         /* bytes per burst; a non-zero multiple of 8 */
    uint32_t write_threshold;   /* every save needs N < write_threshold bursts */
    uint32_t read_threshold;    /* every load needs M < read_threshold bursts */
};
struct vsw_path_limits {
    uint32_t full_units;        /* bursts (or transactions) for the whole context */
    uint32_t worst_save_units;  /* the most any set of dirty groups can need */
    uint32_t worst_load_units;
};
struct vsw_path;
/* params: required for VSW_PATH_STORE, ignored (may be NULL) for VSW_PATH_MEMORY.
 * A mover configuration that cannot meet its thresholds is refused with -E2BIG. */
int vsw_path_create(uint32_t kind, struct vsw_store *store, struct vsw_bus *bus,
                    const struct vsw_mover_params *params, struct vsw_path **out);
void vsw_path_destroy(struct vsw_path *path);
int vsw_path_configure(struct vsw_path *path, const struct vsw_mover_params *params);
/* The memory bus that prices the prior-art path in every switch's stats (NULL: none). */
int vsw_path_set_baseline(struct vsw_path *path, struct vsw_bus *membus);
int vsw_path_limits(const struct vsw_path *path, struct vsw_path_limits *out);
/* Bursts (or transactions) needed to move the groups in mask. */
int vsw_path_units(const struct vsw_path *path, uint32_t mask);
/* Prices moving the groups of mask over the path as one transfer, without moving
 * data or counting it: the switch's own cost model (the memory bus draws its waits
 * from its seeded sequence).  For the architect's model. */
int vsw_path_price(struct vsw_path *path, uint32_t mask, uint32_t *units, uint64_t *ps);
/* Fails unit `unit` of the next save or load transfer with -EIO (VSW_FAULT_NONE disarms). */
int vsw_path_inject(struct vsw_path *path, uint32_t kind, uint32_t unit);

/* ---- PCPU ---- */
struct vsw_pcpu_params {
    uint32_t layout;
    uint32_t cpu_mhz;
    uint32_t exit_entry_cycles; /* VM exit + entry, paid on both paths */
};
struct vsw_pcpu_state {
    uint64_t owner;             /* running machine; 0 while idle */
    uint32_t slot;
    uint32_t dirty_mask;
    uint64_t now_ps;            /* model time */
    uint64_t switches;
};
struct vsw_pcpu;
int vsw_pcpu_create(const struct vsw_pcpu_params *p, struct vsw_pcpu **out);
void vsw_pcpu_destroy(struct vsw_pcpu *p);
int vsw_pcpu_configure(struct vsw_pcpu *p, uint32_t cpu_mhz, uint32_t exit_entry_cycles);
int vsw_pcpu_state(const struct vsw_pcpu *p, struct vsw_pcpu_state *out);
/* The machine running (0: idle), read without entering. */
uint64_t vsw_pcpu_owner(const struct vsw_pcpu *p);
/* The quiesce point (gate.c).  freeze waits for the call inside to leave and
 * then refuses every other thread with -EAGAIN (a PCPU another thread froze is
 * taken over: migrations are serialised by the caller); thaw opens it again and
 * sets the epoch context handles must carry;
 * retire refuses everyone with -ENODEV for good (the memory stays valid until
 * destroy, so a late caller is refused, never let into freed hardware). */
int vsw_pcpu_freeze(struct vsw_pcpu *p);
int vsw_pcpu_thaw(struct vsw_pcpu *p, uint64_t epoch);
/* While the caller has it frozen: the epoch handles must carry from now on (a
 * migration loads machines through their new handles before it thaws). */
int vsw_pcpu_rekey(struct vsw_pcpu *p, uint64_t epoch);
int vsw_pcpu_retire(struct vsw_pcpu *p);
/* The register file: layout size bytes, 64-byte aligned, owned by the PCPU.
 * Write it only through vsw_pcpu_write so the dirty groups are known. */
void *vsw_pcpu_regs(struct vsw_pcpu *p);
/* Register access of machine `owner` (0: whichever runs), atomic against
 * switches: -ESRCH (nothing done) when another machine runs or none. */
int vsw_pcpu_read(struct vsw_pcpu *p, uint64_t owner, uint32_t offset, void *buf, uint32_t len);
int vsw_pcpu_write(struct vsw_pcpu *p, uint64_t owner, uint32_t offset, const void *buf, uint32_t len);
int vsw_pcpu_mark_dirty(struct vsw_pcpu *p, uint32_t mask);
/* Deterministic workload: the state after `steps` depends only on the state before. */
int vsw_pcpu_run(struct vsw_pcpu *p, uint64_t steps);
int vsw_pcpu_set_trace(struct vsw_pcpu *p, struct vsw_trace *t);
int vsw_pcpu_export(struct vsw_pcpu *p, uint64_t owner, uint64_t generation, void *out, size_t len);

/* ---- the switch ----
 * Saves the running machine's dirty groups into its slot and loads machine `to`
 * from its slot.  Atomic: on any error the register file and both slots are as
 * before.  from_owner 0 with an idle PCPU only loads; to_owner 0 only saves and
 * leaves the PCPU idle.  The path's baseline bus, if set, prices the prior art. */
enum vsw_cache_result { VSW_CACHE_NONE = 0, VSW_CACHE_HIT = 1, VSW_CACHE_MISS = 2 };
struct vsw_switch_stats {
    uint32_t path;              /* enum vsw_path_kind */
    uint32_t save_units;        /* N bursts (store path) or stores (memory path) */
    uint32_t load_units;        /* M bursts (store path) or loads (memory path) */
    uint32_t save_mask;         /* groups saved */
    uint64_t bytes_saved;
    uint64_t bytes_loaded;
    uint64_t data_ps;           /* data movement on this path */
    uint64_t exit_entry_ps;     /* fixed VM exit + entry, the same on both paths */
    uint64_t modeled_ps;        /* data_ps + exit_entry_ps */
    uint64_t baseline_ps;       /* the prior-art path for the same groups, exit/entry included */
    uint64_t generation;        /* of the outgoing machine's slot after the save */
    /* the store as a cache (cache.c): what making `to` resident took, in modeled_ps */
    uint32_t cache;             /* enum vsw_cache_result */
    uint32_t reserved;
    uint64_t bytes_fetched;     /* `to`'s context from its home in MEM */
    uint64_t bytes_written_back; /* the victim's changed groups to its home */
    uint64_t cache_ps;          /* fetch + write-back */
};
int vsw_switch(struct vsw_pcpu *p, struct vsw_path *path, uint64_t from_owner, uint32_t to_slot,
               uint64_t to_owner, struct vsw_switch_stats *st);

/* A machine's context as the fast path names it: a slot of the path's store and
 * its owner, bound once so each switch passes two handles instead of five values.
 * It carries the epoch of the PCPUs' last thaw: a PCPU refuses a handle of
 * another epoch with -ESTALE before it touches the path, so a handle a thread
 * still holds after a migration can never reach a path that is gone. */
struct vsw_ctx;
int vsw_ctx_create(struct vsw_path *path, uint32_t slot, uint64_t owner, uint64_t epoch, struct vsw_ctx **out);
void vsw_ctx_destroy(struct vsw_ctx *c);
/* Takes the handle away from every PCPU (waiting for switches in flight on
 * them): afterwards each refuses it with -ESTALE, and its slot may be freed. */
int vsw_ctx_retire(struct vsw_ctx *c, struct vsw_pcpu *const *pcpus, uint32_t n);
/* vsw_switch() between two contexts on one path; frm NULL: the PCPU is idle;
 * to NULL: save and leave it idle.  -EXDEV when they live behind different paths;
 * -ESTALE for a handle of another epoch (or retired). */
int vsw_switch_ctx(struct vsw_pcpu *p, const struct vsw_ctx *frm, const struct vsw_ctx *to,
                   struct vsw_switch_stats *st);
/* A switch descriptor: bound to a PCPU, it receives the stats of the switch it
 * carries out - one handle fewer per call on the hottest path. */
struct vsw_switch_desc {
    struct vsw_switch_stats stats;      /* first: a pointer to the descriptor is one to its stats */
    struct vsw_pcpu *pcpu;
};
int vsw_switch_desc(struct vsw_switch_desc *d, const struct vsw_ctx *frm, const struct vsw_ctx *to);
/* ---- a schedule of switches in one call (schedule.c) ---- */
enum vsw_order { VSW_ORDER_ROUND_ROBIN = 0, VSW_ORDER_RANDOM = 1, VSW_ORDER_SEQUENCE = 2 };
struct vsw_schedule {
    uint64_t switches;          /* how many, at most */
    uint64_t steps;             /* workload steps on each machine before it is switched out */
    uint32_t order;             /* enum vsw_order */
    uint32_t steps_done;        /* 1: the first machine already ran its steps (a refused switch is being retried) */
    uint64_t seed;              /* of the random order */
    const uint32_t *sequence;   /* VSW_ORDER_SEQUENCE: the machine each switch loads (`switches` indices,
                                 * none the machine before it: -EINVAL, nothing run) - a model's schedule */
    uint32_t dirty_mask;        /* groups marked dirty before each switch, beside what the workload wrote */
    uint32_t reserved;
    uint64_t *modeled_ps;       /* optional: each switch's modelled ps ... */
    uint64_t *baseline_ps;      /* ... and the prior art's, for percentiles */
};
struct vsw_schedule_stats {
    uint64_t switches, steps;
    uint64_t save_units, load_units, bytes_saved, bytes_loaded;
    uint64_t data_ps, modeled_ps, baseline_ps, min_modeled_ps, max_modeled_ps;
    uint64_t hits, misses, writebacks, bytes_fetched, bytes_written_back, cache_ps;
    uint32_t current;           /* index of the machine running at the end */
    uint32_t steps_done;        /* 1: it ran its steps, and its switch was refused (retry with plan->steps_done) */
};
/* Runs `plan` on PCPU p over the n >= 2 contexts, ctxs[current] running now.
 * Stops early when *stop becomes non-zero (another thread may set it) or a switch
 * is refused (returned; everything before it is done, *out says how far). */
int vsw_run_schedule(struct vsw_pcpu *p, struct vsw_ctx *const *ctxs, uint32_t n, uint32_t current,
                     const struct vsw_schedule *plan, const volatile int *stop, struct vsw_schedule_stats *out);

/* ---- the context store as a cache of contexts (cache.c) ----
 * Every machine has a home in MEM; the store holds the hot contexts.  A switch
 * to a machine whose context is not in the store fetches it from home into a
 * slot the policy frees - the victim's changed groups written back to its home
 * first - and then switches as always.  Atomic as every switch: a fault in the
 * write-back leaves home and store as they were (the switch is refused); a
 * fault in the fetch leaves the victim safe at home and `to` where it was.
 * Pinned machines never leave the store.  Belady (offline optimal, for
 * comparison) evicts the context used again last in the planned sequence.
 * Recency is the order of loads as the cache sees them (LRU: the textbook's,
 * on one PCPU or several); LRU_TIME orders by the loading PCPU's model clock
 * instead (ties in load order).  Contexts never loaded since they were placed
 * count as least recent (the lowest slot first), and so do Belady's ties.
 * A home slot is backed when first needed: a machine created while the store
 * has room lives there alone, so MEM bounds how many machines there are and
 * costs memory only for those that were ever evicted. */
enum vsw_policy { VSW_POLICY_LRU = 0, VSW_POLICY_CLOCK = 1, VSW_POLICY_BELADY = 2, VSW_POLICY_LRU_TIME = 3 };
/* Who copies between MEM and the store: the PCPU (loads and stores over the
 * memory bus, as the prior art) or the mover (bursts, when it reaches DRAM). */
enum vsw_fetch_via { VSW_FETCH_PCPU = 0, VSW_FETCH_MOVER = 1 };
enum vsw_cache_fault { VSW_CACHE_FAULT_NONE = 0, VSW_CACHE_FAULT_FETCH = 1, VSW_CACHE_FAULT_WRITEBACK = 2 };
struct vsw_cache_params {
    uint32_t policy;            /* enum vsw_policy */
    uint32_t fetch_via;         /* enum vsw_fetch_via */
};
struct vsw_cache_counters {
    uint64_t hits, misses, writebacks, bytes_fetched, bytes_written_back, fetch_ps, writeback_ps;
    uint32_t resident;          /* contexts in the store */
    uint32_t pinned;
    uint32_t machines;          /* with a home reserved in MEM */
    uint32_t home_capacity;     /* machines MEM can hold */
};
struct vsw_ctx_where {
    uint32_t resident;          /* 1: in the store (slot), 0: at home only */
    uint32_t slot;
    uint32_t loaded;            /* 1: on a PCPU */
    uint32_t pinned;
    uint32_t changed_mask;      /* groups the store copy changed since its fetch (written back on eviction) */
    uint32_t cached;            /* 1: a handle of a cache; 0: of a plain store (always resident) */
    uint64_t generation;
};
struct vsw_cache;
/* The store of `path` (a store path) becomes a cache over `home` (MEM), fetched
 * and written back over `membus`.  The store must be empty. */
int vsw_cache_create(struct vsw_path *path, struct vsw_store *home, struct vsw_bus *membus,
                     const struct vsw_cache_params *params, struct vsw_cache **out);
/* Every handle of the cache must have been released. */
void vsw_cache_destroy(struct vsw_cache *c);
int vsw_cache_counters(struct vsw_cache *c, struct vsw_cache_counters *out);
int vsw_cache_reset_counters(struct vsw_cache *c);
/* Fails the next fetch (or write-back) with -EIO after `group` groups moved. */
int vsw_cache_inject(struct vsw_cache *c, uint32_t kind, uint32_t group);
/* The sequence of machines the next switches load, for Belady: each switch that
 * follows it advances the plan; one that does not abandons it (evictions then
 * fall back to least recently used). */
int vsw_cache_plan(struct vsw_cache *c, struct vsw_ctx *const *seq, uint64_t n);
/* A machine of the cache: in the store if a slot is free, else at home; -ENOSPC when MEM is full. */
int vsw_ctx_create_cached(struct vsw_cache *c, uint64_t owner, uint64_t epoch, struct vsw_ctx **out);
/* Pinning fetches the context now if it is not in the store (evicting if need be). */
int vsw_ctx_pin(struct vsw_ctx *x, uint32_t pinned);
int vsw_ctx_where(struct vsw_ctx *x, struct vsw_ctx_where *out);
/* A saved machine's context wherever it is (-EBUSY while loaded on a PCPU):
 * the same contracts as vsw_store_read/write/export/import, for either kind of handle. */
int vsw_ctx_read(struct vsw_ctx *x, uint32_t offset, void *buf, uint32_t len);
int vsw_ctx_write(struct vsw_ctx *x, uint32_t offset, const void *buf, uint32_t len);
int vsw_ctx_export(struct vsw_ctx *x, void *out, size_t len);
int vsw_ctx_import(struct vsw_ctx *x, const void *img, size_t len, struct vsw_image_info *info);
/* Frees a cached machine's slot and home (-EBUSY while loaded); retire it first.
 * A plain handle's slot belongs to its store's owner: -EINVAL. */
int vsw_ctx_release(struct vsw_ctx *x);
/* Takes a retired handle back into use with the PCPUs' epoch (a destroy that was refused). */
int vsw_ctx_revive(struct vsw_ctx *x, uint64_t epoch);

/* ---- the XSAVE area as a host lays it out (xsave.c) ----
 * The layout keeps each state component at its canonical (standard-format)
 * offset; a host's offsets come from CPUID leaf 0xD.  A map says, per
 * component i, where the host puts it; bit i of xcr0 says it has it. */
#define VSW_XSAVE_COMPONENTS 10
struct vsw_xsave_map {
    uint64_t xcr0;                              /* components the host has (x87 and SSE always) */
    uint32_t size;                              /* bytes of the host's standard-format area */
    uint32_t offset[VSW_XSAVE_COMPONENTS];      /* CPUID.(0xD, i).EBX */
    uint32_t csize[VSW_XSAVE_COMPONENTS];       /* CPUID.(0xD, i).EAX */
};
/* The components the layout keeps (a mask of XCR0 bits). */
uint64_t vsw_xsave_known(void);
/* -EPROTO: a component the layout does not keep, or of another size; -ERANGE: outside the area. */
int vsw_xsave_map_check(const struct vsw_xsave_map *m);
/* Host area -> the layout's XSAVE region (absent components zeroed, XSTATE_BV limited to what exists). */
int vsw_xsave_pull(const struct vsw_xsave_map *m, const void *host, size_t host_len, void *canon);
/* The layout's XSAVE region -> host area; -EOPNOTSUPP (nothing written) when the
 * context uses a component the host does not have. */
int vsw_xsave_push(const struct vsw_xsave_map *m, const void *canon, void *host, size_t host_len);

/* ---- a PCPU backed by a KVM vCPU (Linux x86_64 with /dev/kvm; -ENOSYS elsewhere) ----
 * One VM with one vCPU and one block of guest memory.  pull copies the vCPU's
 * whole state into the PCPU register file (KVM_GET_REGS, SREGS, XSAVE, XCRS,
 * DEBUGREGS, VCPU_EVENTS and the layout's MSRs the host has), marking dirty the
 * groups that changed; push is the reverse; run enters the guest for at most a
 * slice, preempting it with a timer signal. */
enum vsw_kvm_exit_reason {
    VSW_KVM_EXIT_PREEMPTED = 0, VSW_KVM_EXIT_IO = 1, VSW_KVM_EXIT_HLT = 2, VSW_KVM_EXIT_SHUTDOWN = 3,
    VSW_KVM_EXIT_OTHER = 4, VSW_KVM_EXIT_BAD_IO = 5
};
struct vsw_kvm_info {
    int32_t api_version;
    uint32_t xsave_size;        /* bytes KVM_GET_XSAVE moves */
    struct vsw_xsave_map xsave; /* how this host lays the XSAVE area out (CPUID leaf 0xD) */
    uint64_t msr_present;       /* bit i: the layout's i-th MSR exists on this host */
    uint32_t host_msrs;         /* MSRs in KVM_GET_MSR_INDEX_LIST */
    uint32_t lapic;             /* 1: an in-kernel local APIC, whose state is the context's lapic group */
    uint64_t supported_xcr0;
    uint64_t mem_bytes;
};
struct vsw_kvm_exit {
    uint32_t reason;            /* enum vsw_kvm_exit_reason */
    uint32_t kvm_reason;        /* KVM's exit_reason */
    uint16_t port;              /* IO: the device register ((address - VSW_MMIO) / 4); BAD_IO: the I/O port, or 0xffff */
    uint8_t size;
    uint8_t write;
    uint32_t reserved;
    uint64_t data;              /* what was written (up to 8 bytes) */
    uint64_t run_ns;            /* wall time inside KVM_RUN */
    uint64_t addr;              /* the guest-physical address accessed (the port, for PIO) */
};
struct vsw_kvm_bench {
    uint64_t iterations;
    uint64_t get_ns[8];         /* totals per ioctl, in the order pull and push issue them ... */
    uint64_t set_ns[8];
    char names[8][16];          /* ... named here: "SREGS", ..., "XSAVE", "MSRS" ("" past the last) */
};
struct vsw_kvm;
int vsw_kvm_open(const char *path, uint64_t mem_bytes, struct vsw_kvm **out, struct vsw_kvm_info *info);
void vsw_kvm_close(struct vsw_kvm *k);
void *vsw_kvm_memory(struct vsw_kvm *k);
/* Gives bytes [offset, offset + len) of guest memory back as zeros without touching them (page aligned). */
int vsw_kvm_clear(struct vsw_kvm *k, uint64_t offset, uint64_t len);
int vsw_kvm_pull(struct vsw_kvm *k, struct vsw_pcpu *p);
int vsw_kvm_push(struct vsw_kvm *k, struct vsw_pcpu *p);
/* Enters the guest for at most slice_ns (a kick that fires before KVM_RUN is
 * entered still ends it).  An IO or BAD_IO exit leaves the access pending:
 * KVM completes it at the next vsw_kvm_run or vsw_kvm_complete, and pull, push
 * and flush refuse (-EBUSY) until then.  BAD_IO: an access the device does not
 * answer (not one of its registers, or at the wrong width or direction, or an
 * I/O port): writes are dropped, reads return 0. */
int vsw_kvm_run(struct vsw_kvm *k, uint64_t slice_ns, struct vsw_kvm_exit *exit);
/* Completes the pending access without running the guest further (KVM_RUN with
 * immediate_exit): 0 when it is complete (or none was pending), 1 when the
 * access was split and its next part exited (in *exit: handle it, then call
 * again). */
int vsw_kvm_complete(struct vsw_kvm *k, struct vsw_kvm_exit *exit);
/* Preemption measured on the host: n runs of a private `jmp .` guest (a memslot
 * of its own, past the device page) each armed for slice_ns; took_ns[i] is the
 * wall time from arming to KVM_RUN's return.  The vCPU holds no context
 * afterwards: push one before running a guest. */
int vsw_kvm_calibrate(struct vsw_kvm *k, uint64_t slice_ns, uint32_t n, uint64_t *took_ns);
/* The value an MMIO read that just exited returns to the guest; it completes at
 * the next vsw_kvm_run, which must come before any pull (-EINVAL: no read pending). */
int vsw_kvm_complete_read(struct vsw_kvm *k, uint64_t value);
/* A fresh vCPU in place of one a guest's triple fault left undefined (push a state before running it). */
int vsw_kvm_reset(struct vsw_kvm *k);
/* Applies what a push left in kvm_run and forgets what pull and push know KVM
 * holds: the next pull GETs every group from KVM (for tests and tools). */
int vsw_kvm_flush(struct vsw_kvm *k);
/* After a push refused with -EINVAL for an MSR: that MSR's index (0: it was another group). */
uint32_t vsw_kvm_refused_msr(const struct vsw_kvm *k);
/* The same GET (then SET) ioctls as pull (push), issued straight from C and timed. */
int vsw_kvm_bench_ioctls(struct vsw_kvm *k, uint64_t iterations, struct vsw_kvm_bench *out);
/* Slices and switches with no return to the caller between them: the slice
 * loop in C.  The vCPU holds ctxs[current]'s state (pushed; that machine runs on
 * p).  Each turn: a slice of slice_ns; when the timer ends it, the next context
 * in round-robin order (ctxs[(current + 1) % n]) gets the vCPU: pull, the same
 * vsw_switch_ctx the API's switch calls (atomic, through p's gate), push.  It
 * stops, to let the caller act, at the first exit other than the timer's (a
 * device access: `exit`, the slice in progress `used_ns` old), when a switch is
 * refused (`r`: the pull or the switch; nothing of it done, `current` still on
 * the vCPU), when the push after a switch is refused (`r`, -EAGAIN while a
 * migration holds the PCPU: `current` switched in but not yet in the vCPU),
 * after max_slices slices, or once max_ns have passed (a slice always ends first). */
enum vsw_kvm_stop { VSW_KVM_STOP_BUDGET = 0, VSW_KVM_STOP_EXIT = 1, VSW_KVM_STOP_REFUSED = 2,
                    VSW_KVM_STOP_UNPUSHED = 3 };
struct vsw_kvm_loop {
    /* in */
    uint64_t slice_ns;
    uint64_t max_slices;        /* >= 1 */
    uint64_t max_ns;            /* 0: no bound */
    uint32_t switch_first;      /* 1: ctxs[current] has had its slice: switch before the first */
    uint32_t reserved;
    uint64_t *took_ns;          /* optional, max_slices entries: each timer-ended slice's wall ns */
    uint64_t *own_ns;           /* n entries, added to: each context's time inside KVM_RUN */
    uint64_t *slices_of;        /* n entries, added to: each context's slices */
    /* out */
    uint32_t stopped;           /* enum vsw_kvm_stop */
    uint32_t current;           /* the context the vCPU holds */
    int32_t r;                  /* STOP_REFUSED: what vsw_switch_ctx returned */
    uint32_t reserved2;
    uint64_t slices, preempted, switches;   /* preempted: entries written to took_ns */
    uint64_t guest_ns, pull_ns, push_ns, switch_ns;
    uint64_t save_units, load_units;
    uint64_t paths[2];          /* switches per enum vsw_path_kind */
    uint64_t used_ns;           /* STOP_EXIT: wall ns of the slice so far (exit.run_ns not in own_ns) */
    struct vsw_kvm_exit exit;
};
int vsw_kvm_loop(struct vsw_kvm *k, struct vsw_pcpu *p, struct vsw_ctx *const *ctxs, uint32_t n,
                 uint32_t current, struct vsw_kvm_loop *L);

/* ---- guest programs, assembled from source with the C core (csrc/guests.c) ---- */
struct vsw_guest_program {
    const char *name;
    const uint8_t *code;
    uint32_t size;
};
int vsw_guest_program(uint32_t index, struct vsw_guest_program *out);

/* ---- benchmark support: the switch loop timed in C, beside memcpy of the same bytes ---- */
struct vsw_bench_result {
    uint64_t switches;
    uint64_t bytes;             /* moved by the switches (saved + loaded) */
    uint64_t switch_ns;         /* wall time of the switch loop */
    uint64_t memcpy_ns;         /* wall time of memcpy moving the same bytes in the same chunks */
    /* where the switch's time goes beyond the copy: */
    uint64_t data_ns;           /* the same checked copies alone (save with checks, load verified) */
    uint64_t atomics_ns;        /* the atomic operations a switch makes (gate, claim, release, counters) alone */
};
/* Round-robin over the machines (slots[i] owned by owners[i]; the PCPU must run
 * owners[0]), marking dirty_mask before each switch, for `switches` switches. */
int vsw_bench_switch_loop(struct vsw_pcpu *p, struct vsw_path *path, const uint32_t *slots,
                          const uint64_t *owners, uint32_t machines, uint64_t switches, uint32_t dirty_mask,
                          struct vsw_bench_result *out);
/* ---- calibration: this host's own costs (calibrate.c; not on any switch path) ---- */
struct vsw_calibration {
    uint64_t xcr0;              /* the features the OS enabled */
    uint64_t xsave_bytes;       /* CPUID.(0xD, 0).EBX: their XSAVE area */
    uint64_t iterations;
    uint64_t xsave_xrstor_ns;   /* wall time of `iterations` XSAVE + XRSTOR pairs */
    uint64_t xsave_xrstor_tsc;  /* the same in TSC ticks */
};
/* -EOPNOTSUPP where the host has no XSAVE (not x86_64, or the OS did not enable it). */
int vsw_calibrate_xsave(uint64_t iterations, struct vsw_calibration *out);
/* `iterations` memcpy of `bytes` between two hot buffers: wall ns and TSC ticks in all. */
int vsw_calibrate_memcpy(uint32_t bytes, uint64_t iterations, uint64_t *ns, uint64_t *tsc);
/* CDEF-END */

#endif
