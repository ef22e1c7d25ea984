/*
 * fastpath.c - pyvswitch._fastpath: the switch from Python without the cffi
 * call's overhead, through documented CPython interfaces only.
 *
 * cffi releases the GIL around every call it wraps.  For one switch (about
 * 100-200 ns of C) dropping and re-taking the GIL costs a third as much again
 * and lets no other thread do anything useful in the gap, so the switch is
 * called from here instead, keeping the GIL: it never blocks (its only wait
 * is a PCPU's bounded busy flag; a migration's freeze makes it refuse with
 * -EAGAIN), so holding the GIL cannot deadlock.  Everything long - schedules,
 * KVM runs, image copies - still goes through cffi with the GIL released.
 *
 * This module does not link against the C core: the Python side hands it the
 * addresses of vsw_switch and vsw_pcpu_owner (ffi.addressof on the cffi
 * module) and of each PCPU (its cffi handle, kept alive here).  It defines:
 *
 *   SwitchStats struct vsw_switch_stats inline, read through member descriptors;
 *            exports the struct as a writable buffer (ffi.from_buffer);
 *   Handle   the base of api.Machine: a context handle (struct vsw_ctx *, the
 *            cffi object that owns it, the Switcher it was bound for) and the
 *            PCPU it was last loaded onto;
 *   Switcher the PCPUs of one bring-up of a hypervisor: switch(frm, to, pcpu,
 *            out) and switch_running(frm, to, out) (METH_FASTCALL);
 *   SwitchMethod  Hypervisor.switch_context: a method descriptor whose call is
 *            one vectorcall into C (the Switcher's switch), the slow path in
 *            Python only when the switcher does not take the arguments or C
 *            refuses the switch;
 *   SwitchRunning pyvswitch.switch_context, the same on the PCPU the machine
 *            was last loaded onto.
 *
 * A switch returns its Stats, or an int: -errno when C refused it (nothing
 * changed), 0 when the arguments are not ones it takes (wrong types, a handle
 * unbound or of another switcher, a bad PCPU index, both idle) - the caller's
 * slow path then says what is wrong.  Nothing here raises on the hot path and
 * no global state is kept.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <string.h>

#include "vsw.h"

typedef int (*switch_fn)(struct vsw_pcpu *, const struct vsw_ctx *, const struct vsw_ctx *,
                         struct vsw_switch_stats *);
typedef uint64_t (*owner_fn)(const struct vsw_pcpu *);

/* ---- Stats -------------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    struct vsw_switch_stats st;
} Stats;

#define STAT(name, field, type, doc) {name, type, offsetof(Stats, st) + offsetof(struct vsw_switch_stats, field), \
                                      READONLY, doc}
static PyMemberDef stats_members[] = {
    STAT("save_bursts", save_units, T_UINT, "N: the mover's bursts of the save (memory path: the PCPU's stores)"),
    STAT("load_bursts", load_units, T_UINT, "M: the mover's bursts of the load (memory path: the PCPU's loads)"),
    STAT("save_mask", save_mask, T_UINT, "the groups saved: the dirty ones"),
    STAT("bytes_saved", bytes_saved, T_ULONGLONG, "bytes saved"),
    STAT("bytes_loaded", bytes_loaded, T_ULONGLONG, "bytes loaded"),
    STAT("generation", generation, T_ULONGLONG, "of the outgoing machine's slot after the save"),
    STAT("bytes_fetched", bytes_fetched, T_ULONGLONG, "the incoming context from its home in MEM, on a miss"),
    STAT("bytes_written_back", bytes_written_back, T_ULONGLONG, "the evicted context's changed groups"),
    STAT("_path", path, T_UINT, "enum vsw_path_kind"),
    STAT("_cache", cache, T_UINT, "enum vsw_cache_result"),
    STAT("_data_ps", data_ps, T_ULONGLONG, NULL),
    STAT("_exit_entry_ps", exit_entry_ps, T_ULONGLONG, NULL),
    STAT("_modeled_ps", modeled_ps, T_ULONGLONG, NULL),
    STAT("_baseline_ps", baseline_ps, T_ULONGLONG, NULL),
    STAT("_cache_ps", cache_ps, T_ULONGLONG, NULL),
    {NULL, 0, 0, 0, NULL},
};

#define NS_GETTER(field)                                                                                            \
    static PyObject *stats_##field(PyObject *self, void *closure)                                                   \
    {                                                                                                                \
        (void)closure;                                                                                               \
        return PyFloat_FromDouble((double)((Stats *)self)->st.field / 1000.0);                                      \
    }
NS_GETTER(data_ps)
NS_GETTER(exit_entry_ps)
NS_GETTER(modeled_ps)
NS_GETTER(baseline_ps)
NS_GETTER(cache_ps)

/* The names the API shows for enum vsw_path_kind and enum vsw_cache_result
 * (pyvswitch/hw/stats.py checks them against hw.path.PATH_NAMES and hw.cache.RESULTS). */
static PyObject *stats_path(PyObject *self, void *closure)
{
    (void)closure;
    switch (((Stats *)self)->st.path) {
    case VSW_PATH_STORE:
        return PyUnicode_FromString("store");
    case VSW_PATH_MEMORY:
        return PyUnicode_FromString("memory");
    default:
        return PyLong_FromUnsignedLong(((Stats *)self)->st.path);
    }
}

static PyObject *stats_cache(PyObject *self, void *closure)
{
    (void)closure;
    switch (((Stats *)self)->st.cache) {
    case VSW_CACHE_HIT:
        return PyUnicode_FromString("hit");
    case VSW_CACHE_MISS:
        return PyUnicode_FromString("miss");
    default:
        Py_RETURN_NONE;
    }
}

static PyGetSetDef stats_getset[] = {
    {"path", stats_path, NULL, "\"store\" (the mover) or \"memory\" (prior art)", NULL},
    {"cache", stats_cache, NULL,
     "\"hit\" or \"miss\": whether the incoming context was in the store (None on the memory path)", NULL},
    {"data_ns", stats_data_ps, NULL, "modelled data movement on this path", NULL},
    {"exit_entry_ns", stats_exit_entry_ps, NULL, "fixed VM exit + entry (both paths)", NULL},
    {"modeled_ns", stats_modeled_ps, NULL, "data movement + exit/entry", NULL},
    {"baseline_ns", stats_baseline_ps, NULL,
     "the prior-art path for the same groups (0 without a memory bus to price it)", NULL},
    {"cache_ns", stats_cache_ps, NULL, "modelled write-back + fetch of a miss (part of data_ns)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static const char *const stats_fields[] = {
    "path", "save_bursts", "load_bursts", "save_mask", "bytes_saved", "bytes_loaded", "data_ns",
    "exit_entry_ns", "modeled_ns", "baseline_ns", "generation", "cache", "bytes_fetched",
    "bytes_written_back", "cache_ns", NULL,
};

static PyObject *stats_as_dict(PyObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && stats_fields[i]; i++) {
        PyObject *v = PyObject_GetAttrString(self, stats_fields[i]);
        if (!v || PyDict_SetItemString(d, stats_fields[i], v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v);
    }
    return d;
}

static PyObject *stats_repr(PyObject *self)
{
    const struct vsw_switch_stats *st = &((Stats *)self)->st;
    char *modeled = PyOS_double_to_string((double)st->modeled_ps / 1000.0, 'f', 1, 0, NULL);
    char *baseline = PyOS_double_to_string((double)st->baseline_ps / 1000.0, 'f', 1, 0, NULL);
    PyObject *path = stats_path(self, NULL), *r = NULL;
    if (modeled && baseline && path)
        r = PyUnicode_FromFormat("SwitchStats(path=%R, N=%u, M=%u, saved=%llu, loaded=%llu, modeled_ns=%s, "
                                 "baseline_ns=%s)", path, st->save_units, st->load_units,
                                 (unsigned long long)st->bytes_saved, (unsigned long long)st->bytes_loaded,
                                 modeled, baseline);
    PyMem_Free(modeled);
    PyMem_Free(baseline);
    Py_XDECREF(path);
    return r;
}

static PyMethodDef stats_methods[] = {
    {"as_dict", stats_as_dict, METH_NOARGS, "as_dict() -> {field: value} for every name in FIELDS"},
    {NULL, NULL, 0, NULL},
};

static PyObject *stats_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_Format(PyExc_TypeError, "%s() takes no arguments", type->tp_name);
        return NULL;
    }
    return type->tp_alloc(type, 0);     /* zeroed: a switch that did nothing */
}

static int stats_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    return PyBuffer_FillInfo(view, self, &((Stats *)self)->st, sizeof(struct vsw_switch_stats), 0, flags);
}

static PyBufferProcs stats_as_buffer = {stats_getbuffer, NULL};

static PyTypeObject StatsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pyvswitch.SwitchStats",
    .tp_doc = PyDoc_STR(
        "What one switch did and what it would cost (model nanoseconds).\n\n"
        "Integers: save_bursts and load_bursts (N and M: the mover's bursts, or on the memory path the\n"
        "PCPU's stores and loads), save_mask (the groups saved: the dirty ones), bytes_saved, bytes_loaded,\n"
        "generation (of the outgoing slot after the save), bytes_fetched (the incoming context from its\n"
        "home in MEM, on a miss) and bytes_written_back (the evicted context's changed groups).  Model\n"
        "times: data_ns, exit_entry_ns, modeled_ns, baseline_ns, cache_ns.  path and cache name the path\n"
        "and whether the store held the context.  SwitchStats() is all zeros: one to pass as out= to a\n"
        "switch, which fills it (a new one is returned otherwise).  Holds struct vsw_switch_stats inline\n"
        "and exports it as a writable buffer."),
    .tp_basicsize = sizeof(Stats),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = stats_new,
    .tp_repr = stats_repr,
    .tp_methods = stats_methods,
    .tp_members = stats_members,
    .tp_getset = stats_getset,
    .tp_as_buffer = &stats_as_buffer,
};

/* FIELDS, a class attribute (set once, at module initialisation, as datetime sets its own). */
static int stats_ready(void)
{
    if (PyType_Ready(&StatsType) < 0)
        return -1;
    Py_ssize_t n = 0;
    while (stats_fields[n])
        n++;
    PyObject *t = PyTuple_New(n);
    for (Py_ssize_t i = 0; t && i < n; i++) {
        PyObject *s = PyUnicode_InternFromString(stats_fields[i]);
        if (!s) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    int r = t ? PyDict_SetItemString(StatsType.tp_dict, "FIELDS", t) : -1;
    Py_XDECREF(t);
    PyType_Modified(&StatsType);
    return r;
}

/* ---- Handle ------------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    struct vsw_ctx *ctx;        /* NULL: unbound (not placed, destroyed, or its hypervisor closed) */
    PyObject *keep;             /* the cffi object owning ctx: alive while bound */
    PyObject *switcher;         /* the Switcher it was bound for */
    Py_ssize_t hint;            /* the PCPU it was last loaded onto; -1: none */
} Handle;

static PyObject *handle_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    Handle *h = (Handle *)type->tp_alloc(type, 0);
    if (h)
        h->hint = -1;
    return (PyObject *)h;
}

static int handle_traverse(PyObject *self, visitproc visit, void *arg)
{
    Handle *h = (Handle *)self;
    Py_VISIT(h->keep);
    Py_VISIT(h->switcher);
    return 0;
}

static int handle_clear(PyObject *self)
{
    Handle *h = (Handle *)self;
    h->ctx = NULL;
    Py_CLEAR(h->keep);
    Py_CLEAR(h->switcher);
    return 0;
}

static void handle_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    handle_clear(self);
    type->tp_free(self);
}

static PyTypeObject SwitcherType;

/* _bind(keep, address, switcher): bound to the context handle at `address`
 * (owned by `keep`) for `switcher`; _bind(None, 0, None) unbinds. */
static PyObject *handle_bind(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Handle *h = (Handle *)self;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "_bind takes 3 arguments (keep, address, switcher), got %zd", nargs);
        return NULL;
    }
    PyObject *keep = args[0], *sw = args[2];
    void *addr = NULL;
    if (keep != Py_None) {
        addr = PyLong_AsVoidPtr(args[1]);
        if (!addr && PyErr_Occurred())
            return NULL;
        if (!addr || !PyObject_TypeCheck(sw, &SwitcherType)) {
            PyErr_SetString(PyExc_TypeError, "_bind: a bound handle needs a non-zero address and a Switcher");
            return NULL;
        }
    } else {
        sw = Py_None;
    }
    PyObject *old_keep = h->keep, *old_sw = h->switcher;
    h->ctx = addr;
    h->keep = keep == Py_None ? NULL : Py_NewRef(keep);
    h->switcher = sw == Py_None ? NULL : Py_NewRef(sw);
    Py_XDECREF(old_keep);       /* may free the old context handle: after it is no longer reachable */
    Py_XDECREF(old_sw);
    Py_RETURN_NONE;
}

static PyObject *handle_get_c(PyObject *self, void *closure)
{
    (void)closure;
    Handle *h = (Handle *)self;
    return Py_NewRef(h->keep ? h->keep : Py_None);
}

static PyObject *handle_get_hint(PyObject *self, void *closure)
{
    (void)closure;
    Handle *h = (Handle *)self;
    if (h->hint < 0)
        Py_RETURN_NONE;
    return PyLong_FromSsize_t(h->hint);
}

static int handle_set_hint(PyObject *self, PyObject *value, void *closure)
{
    (void)closure;
    Handle *h = (Handle *)self;
    if (!value || value == Py_None) {
        h->hint = -1;
        return 0;
    }
    Py_ssize_t v = PyLong_AsSsize_t(value);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0) {
        PyErr_SetString(PyExc_ValueError, "_hint is a PCPU index or None");
        return -1;
    }
    h->hint = v;
    return 0;
}

static PyGetSetDef handle_getset[] = {
    {"_handle", handle_get_c, NULL, "the cffi context handle bound (None: unbound)", NULL},
    {"_hint", handle_get_hint, handle_set_hint, "the PCPU it was last loaded onto, or None", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef handle_methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))handle_bind, METH_FASTCALL,
     "_bind(keep, address, switcher): bind to a context handle (keep None: unbind)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject HandleType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pyvswitch._fastpath.Handle",
    .tp_doc = PyDoc_STR("A machine's context handle as the switcher takes it."),
    .tp_basicsize = sizeof(Handle),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = handle_new,
    .tp_traverse = handle_traverse,
    .tp_clear = handle_clear,
    .tp_dealloc = handle_dealloc,
    .tp_getset = handle_getset,
    .tp_methods = handle_methods,
};

/* ---- Switcher ----------------------------------------------------------------- */
typedef struct {
    PyObject_VAR_HEAD           /* ob_size: PCPUs */
    switch_fn sw;
    owner_fn owner;
    PyObject *keep;             /* the cffi PCPU handles: alive as long as this */
    struct vsw_pcpu *pcpu[1];
} Switcher;

static void *address(PyObject *v, const char *what)
{
    void *p = PyLong_AsVoidPtr(v);
    if (!p && !PyErr_Occurred())
        PyErr_Format(PyExc_ValueError, "Switcher: %s is NULL", what);
    return p;
}

/* Switcher(switch_address, owner_address, pcpu_addresses, keep) */
static PyObject *switcher_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *fsw, *fown, *addrs, *keep;
    if (kwds && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "Switcher takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OOO!O:Switcher", &fsw, &fown, &PyTuple_Type, &addrs, &keep))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(addrs);
    Switcher *s = (Switcher *)type->tp_alloc(type, n);
    if (!s)
        return NULL;
    s->sw = (switch_fn)address(fsw, "the switch");
    s->owner = s->sw ? (owner_fn)address(fown, "vsw_pcpu_owner") : NULL;     /* no call with an error set */
    for (Py_ssize_t i = 0; i < n && s->owner && !PyErr_Occurred(); i++)
        s->pcpu[i] = address(PyTuple_GET_ITEM(addrs, i), "a PCPU");
    s->keep = Py_NewRef(keep);
    if (PyErr_Occurred()) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

static int switcher_traverse(PyObject *self, visitproc visit, void *arg)
{
    Switcher *s = (Switcher *)self;
    Py_VISIT(s->keep);
    return 0;
}

static int switcher_clear(PyObject *self)
{
    Switcher *s = (Switcher *)self;
    Py_CLEAR(s->keep);
    Py_SET_SIZE(s, 0);          /* no PCPU reachable once their owners may be gone */
    return 0;
}

static void switcher_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    switcher_clear(self);
    Py_TYPE(self)->tp_free(self);
}

/* The context of `m` (None: NULL) in *out, or 0 when `m` is not a handle bound for `s`. */
static inline int ctx_of(const Switcher *s, PyObject *m, const struct vsw_ctx **out)
{
    if (m == Py_None) {
        *out = NULL;
        return 1;
    }
    if (!PyObject_TypeCheck(m, &HandleType))
        return 0;
    const Handle *h = (const Handle *)m;
    *out = h->ctx;
    return h->ctx != NULL && h->switcher == (PyObject *)s;
}

static PyObject *not_mine(void) { return PyLong_FromLong(0); }

/* The switch on PCPU i: the Stats (out's, or new), -errno (refused), 0 (not ours to try). */
static PyObject *do_switch(Switcher *s, Py_ssize_t i, PyObject *frm, PyObject *to, PyObject *out)
{
    const struct vsw_ctx *f, *t;
    if (!ctx_of(s, frm, &f) || !ctx_of(s, to, &t) || (!f && !t))
        return not_mine();
    Stats *st;
    if (out == Py_None) {
        st = PyObject_New(Stats, &StatsType);
        if (!st)
            return NULL;
        memset(&st->st, 0, sizeof(st->st));    /* a few stores: no field is ever uninitialised */
    } else if (PyObject_TypeCheck(out, &StatsType)) {
        st = (Stats *)Py_NewRef(out);
    } else {
        return not_mine();
    }
    int r = s->sw(s->pcpu[i], f, t, &st->st);
    if (r < 0) {
        Py_DECREF(st);
        return PyLong_FromLong(r);
    }
    if (t)
        ((Handle *)to)->hint = i;
    return (PyObject *)st;
}

/* The switch on the PCPU `pcpu` names: None is PCPU 0; an int (not a bool) 0..n-1 one of them. */
static PyObject *switch_on(Switcher *s, PyObject *frm, PyObject *to, PyObject *pcpu, PyObject *out)
{
    Py_ssize_t i = 0;
    if (pcpu != Py_None) {
        if (!PyLong_Check(pcpu) || PyBool_Check(pcpu))     /* an int subclass (IntEnum) is an index too */
            return not_mine();
        int overflow;
        long v = PyLong_AsLongAndOverflow(pcpu, &overflow);
        if (overflow || v < 0 || v >= Py_SIZE(s))
            return not_mine();
        i = v;
    } else if (Py_SIZE(s) == 0) {
        return not_mine();
    }
    return do_switch(s, i, frm, to, out);
}

/* switch(frm, to, pcpu, out) */
static PyObject *switcher_switch(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "switch takes 4 arguments (frm, to, pcpu, out), got %zd", nargs);
        return NULL;
    }
    return switch_on((Switcher *)self, args[0], args[1], args[2], args[3]);
}

/* switch_running(frm, to, out): on the PCPU frm was last loaded onto (C refuses
 * with -ESRCH, nothing changed, when it runs there no longer). */
static PyObject *switcher_switch_running(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Switcher *s = (Switcher *)self;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "switch_running takes 3 arguments (frm, to, out), got %zd", nargs);
        return NULL;
    }
    PyObject *frm = args[0];
    if (!PyObject_TypeCheck(frm, &HandleType))
        return not_mine();
    Py_ssize_t i = ((Handle *)frm)->hint;
    if (i < 0 || i >= Py_SIZE(s))
        return not_mine();
    return do_switch(s, i, frm, args[1], args[2]);
}

/* owner(i): the machine running on PCPU i (0: idle), read without entering it. */
static PyObject *switcher_owner(PyObject *self, PyObject *arg)
{
    Switcher *s = (Switcher *)self;
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    if (i < 0 || i >= Py_SIZE(s)) {
        PyErr_Format(PyExc_IndexError, "no PCPU %zd here (%zd)", i, Py_SIZE(s));
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(s->owner(s->pcpu[i]));
}

static PyMethodDef switcher_methods[] = {
    {"switch", (PyCFunction)(void (*)(void))switcher_switch, METH_FASTCALL,
     "switch(frm, to, pcpu, out) -> Stats | int: -errno refused, 0 not for this switcher"},
    {"switch_running", (PyCFunction)(void (*)(void))switcher_switch_running, METH_FASTCALL,
     "switch_running(frm, to, out): switch on the PCPU frm was last loaded onto"},
    {"owner", switcher_owner, METH_O, "owner(i) -> the machine id running on PCPU i (0: idle)"},
    {NULL, NULL, 0, NULL},
};

static PyObject *switcher_len(PyObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(Py_SIZE(self));
}

static PyGetSetDef switcher_getset[] = {
    {"npcpus", switcher_len, NULL, "the PCPUs it switches", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SwitcherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pyvswitch._fastpath.Switcher",
    .tp_doc = PyDoc_STR("Switcher(switch_address, owner_address, pcpu_addresses, keep): "
                        "the switch on a hypervisor's PCPUs, keeping the GIL."),
    .tp_basicsize = offsetof(Switcher, pcpu),
    .tp_itemsize = sizeof(struct vsw_pcpu *),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = switcher_new,
    .tp_traverse = switcher_traverse,
    .tp_clear = switcher_clear,
    .tp_dealloc = switcher_dealloc,
    .tp_methods = switcher_methods,
    .tp_getset = switcher_getset,
};

/* ---- SwitchMethod: Hypervisor.switch_context --------------------------------- */
/* A method descriptor (Py_TPFLAGS_METHOD_DESCRIPTOR, PEP 590), so that
 * hv.switch_context(frm, to, pcpu=None, *, out=None) is one vectorcall into C:
 * the hypervisor's `_switcher` switches, and whatever it does not take or C
 * refuses goes to the hypervisor's `_switch_slow(frm, to, pcpu, r, out)`. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *doc;
    PyObject *switcher_attr;    /* "_switcher" */
    PyObject *slow_attr;        /* "_switch_slow" */
    PyObject *names[4];         /* "frm", "to", "pcpu", "out": the parameters, in order */
} SwitchMethod;

static PyTypeObject SwitchMethodType;

/* The parameter names `names` (NULL-terminated C strings) interned into out[]. */
static int intern_names(const char *const *names, PyObject **out)
{
    for (size_t i = 0; names[i]; i++) {
        out[i] = PyUnicode_InternFromString(names[i]);
        if (!out[i])
            return -1;
    }
    return 0;
}

/* The arguments of a call, as Python binds them: positional ones (at most npos)
 * then keywords into slot[0..n) by the parameter names `names`; the first nreq
 * required.  A TypeError in Python's words otherwise (nothing was switched). */
static int bind_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject *const *names,
                     Py_ssize_t n, Py_ssize_t npos, Py_ssize_t nreq, PyObject **slot)
{
    if (nargs > npos) {
        PyErr_Format(PyExc_TypeError, "switch_context() takes at most %zd positional arguments (%zd given)", npos,
                     nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        slot[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = 0;
        while (i < n && name != names[i])       /* interned: usually the same object */
            i++;
        for (Py_ssize_t j = 0; i == n && j < n; j++) {
            if (PyUnicode_Compare(name, names[j]) == 0)
                i = j;
        }
        if (i == n) {
            PyErr_Format(PyExc_TypeError, "switch_context() got an unexpected keyword argument '%U'", name);
            return -1;
        }
        if (slot[i]) {
            PyErr_Format(PyExc_TypeError, "switch_context() got multiple values for argument '%U'", name);
            return -1;
        }
        slot[i] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < nreq; i++) {
        if (!slot[i]) {
            PyErr_Format(PyExc_TypeError, "switch_context() missing required argument '%U'", names[i]);
            return -1;
        }
    }
    return 0;
}

static PyObject *method_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    SwitchMethod *m = (SwitchMethod *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "switch_context() is a method: hv.switch_context(frm, to, pcpu=None, *, "
                                         "out=None)");
        return NULL;
    }
    PyObject *hv = args[0], *a[4];     /* frm, to, pcpu, out */
    if (!kwnames && (nargs == 3 || nargs == 4)) {
        a[0] = args[1], a[1] = args[2], a[2] = nargs == 4 ? args[3] : NULL, a[3] = NULL;
    } else if (bind_args(args + 1, nargs - 1, kwnames, m->names, 4, 3, 2, a) < 0) {
        return NULL;
    }
    PyObject *frm = a[0], *to = a[1], *pcpu = a[2] ? a[2] : Py_None, *out = a[3] ? a[3] : Py_None;
    PyObject *sw = PyObject_GetAttr(hv, m->switcher_attr);
    if (!sw)
        return NULL;
    if (!PyObject_TypeCheck(sw, &SwitcherType)) {
        PyErr_Format(PyExc_TypeError, "switch_context: %R._switcher is not a Switcher", hv);
        Py_DECREF(sw);
        return NULL;
    }
    PyObject *r = switch_on((Switcher *)sw, frm, to, pcpu, out);
    Py_DECREF(sw);
    if (!r || !PyLong_CheckExact(r))
        return r;
    PyObject *slow_args[] = {hv, frm, to, pcpu, r, out};
    PyObject *res = PyObject_VectorcallMethod(m->slow_attr, slow_args, 6, NULL);
    Py_DECREF(r);
    return res;
}

static PyObject *method_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *doc;
    if (kwds && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "SwitchMethod takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "U:SwitchMethod", &doc))
        return NULL;
    SwitchMethod *m = (SwitchMethod *)type->tp_alloc(type, 0);
    if (!m)
        return NULL;
    m->vectorcall = method_vectorcall;
    m->doc = Py_NewRef(doc);
    m->switcher_attr = PyUnicode_InternFromString("_switcher");
    m->slow_attr = PyUnicode_InternFromString("_switch_slow");
    static const char *const names[] = {"frm", "to", "pcpu", "out", NULL};
    if (!m->switcher_attr || !m->slow_attr || intern_names(names, m->names) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return (PyObject *)m;
}

static void method_dealloc(PyObject *self)
{
    SwitchMethod *m = (SwitchMethod *)self;
    Py_XDECREF(m->doc);
    Py_XDECREF(m->switcher_attr);
    Py_XDECREF(m->slow_attr);
    for (size_t i = 0; i < sizeof(m->names) / sizeof(m->names[0]); i++)
        Py_XDECREF(m->names[i]);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *method_get(PyObject *self, PyObject *obj, PyObject *type)
{
    (void)type;
    if (!obj || obj == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

static PyObject *method_doc(PyObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(((SwitchMethod *)self)->doc);
}

static PyObject *method_name(PyObject *self, void *closure)
{
    (void)self;
    (void)closure;
    return PyUnicode_FromString("switch_context");
}

static PyObject *method_signature(PyObject *self, void *closure)
{
    (void)self;
    (void)closure;
    return PyUnicode_FromString("($self, frm, to, pcpu=None, *, out=None)");
}

static PyGetSetDef method_getset[] = {
    {"__doc__", method_doc, NULL, NULL, NULL},
    {"__name__", method_name, NULL, NULL, NULL},
    {"__qualname__", method_name, NULL, NULL, NULL},
    {"__text_signature__", method_signature, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SwitchMethodType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pyvswitch._fastpath.SwitchMethod",
    .tp_doc = PyDoc_STR("SwitchMethod(doc): Hypervisor.switch_context as one vectorcall into C."),
    .tp_basicsize = sizeof(SwitchMethod),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_vectorcall_offset = offsetof(SwitchMethod, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = method_new,
    .tp_dealloc = method_dealloc,
    .tp_descr_get = method_get,
    .tp_getset = method_getset,
};

/* ---- SwitchRunning: pyvswitch.switch_context ---------------------------------- */
/* SwitchRunning(doc, fallback): switch_context(frm, to, *, out=None) on the PCPU
 * `frm` was last loaded onto, through the Switcher its handle is bound for - the
 * same switch as the method's; an int result (0: not taken, -errno: refused,
 * -ESRCH among them when frm runs elsewhere now) goes to fallback(frm, to, r, out). */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *doc;
    PyObject *fallback;
    PyObject *names[3];         /* "frm", "to", "out" */
} SwitchRunning;

static PyObject *running_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    SwitchRunning *m = (SwitchRunning *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *a[3];             /* frm, to, out */
    if (!kwnames && nargs == 2) {
        a[0] = args[0], a[1] = args[1], a[2] = NULL;
    } else if (bind_args(args, nargs, kwnames, m->names, 3, 2, 2, a) < 0) {
        return NULL;
    }
    PyObject *frm = a[0], *to = a[1], *out = a[2] ? a[2] : Py_None, *r;
    const Handle *h = PyObject_TypeCheck(frm, &HandleType) ? (const Handle *)frm : NULL;
    if (h && h->switcher) {
        Switcher *s = (Switcher *)h->switcher;
        r = h->hint >= 0 && h->hint < Py_SIZE(s) ? do_switch(s, h->hint, frm, to, out) : not_mine();
    } else {
        r = not_mine();
    }
    if (!r || !PyLong_CheckExact(r))
        return r;
    PyObject *fb_args[] = {frm, to, r, out};
    PyObject *res = PyObject_Vectorcall(m->fallback, fb_args, 4, NULL);
    Py_DECREF(r);
    return res;
}

static PyObject *running_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *doc, *fallback;
    if (kwds && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "SwitchRunning takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "UO:SwitchRunning", &doc, &fallback))
        return NULL;
    SwitchRunning *m = (SwitchRunning *)type->tp_alloc(type, 0);
    if (!m)
        return NULL;
    m->vectorcall = running_vectorcall;
    m->doc = Py_NewRef(doc);
    m->fallback = Py_NewRef(fallback);
    static const char *const names[] = {"frm", "to", "out", NULL};
    if (intern_names(names, m->names) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return (PyObject *)m;
}

static void running_dealloc(PyObject *self)
{
    SwitchRunning *m = (SwitchRunning *)self;
    Py_XDECREF(m->doc);
    Py_XDECREF(m->fallback);
    for (size_t i = 0; i < sizeof(m->names) / sizeof(m->names[0]); i++)
        Py_XDECREF(m->names[i]);
    Py_TYPE(self)->tp_free(self);
}

/* Not bound to an instance (a function of the module, not a method), as
 * staticmethod; its __get__ also lets inspect read __text_signature__. */
static PyObject *running_get(PyObject *self, PyObject *obj, PyObject *type)
{
    (void)obj;
    (void)type;
    return Py_NewRef(self);
}

static PyObject *running_doc(PyObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(((SwitchRunning *)self)->doc);
}

static PyObject *running_signature(PyObject *self, void *closure)
{
    (void)self;
    (void)closure;
    return PyUnicode_FromString("(frm, to, *, out=None)");
}

static PyGetSetDef running_getset[] = {
    {"__doc__", running_doc, NULL, NULL, NULL},
    {"__name__", method_name, NULL, NULL, NULL},
    {"__qualname__", method_name, NULL, NULL, NULL},
    {"__text_signature__", running_signature, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SwitchRunningType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pyvswitch._fastpath.SwitchRunning",
    .tp_doc = PyDoc_STR("SwitchRunning(doc, fallback): pyvswitch.switch_context as one vectorcall into C."),
    .tp_basicsize = sizeof(SwitchRunning),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(SwitchRunning, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = running_new,
    .tp_dealloc = running_dealloc,
    .tp_descr_get = running_get,
    .tp_getset = running_getset,
};

/* ---- module ------------------------------------------------------------------- */
static int fastpath_exec(PyObject *m)
{
    PyTypeObject *types[] = {&StatsType, &HandleType, &SwitcherType, &SwitchMethodType, &SwitchRunningType};
    const char *names[] = {"SwitchStats", "Handle", "Switcher", "SwitchMethod", "SwitchRunning"};
    if (stats_ready() < 0)
        return -1;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyType_Ready(types[i]) < 0 || PyModule_AddObjectRef(m, names[i], (PyObject *)types[i]) < 0)
            return -1;
    }
    return PyModule_AddIntConstant(m, "STATS_SIZE", (long)sizeof(struct vsw_switch_stats));
}

static PyModuleDef_Slot fastpath_slots[] = {
    {Py_mod_exec, fastpath_exec},
    {0, NULL},
};

static struct PyModuleDef fastpath_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pyvswitch._fastpath",
    .m_doc = "The switch from Python, keeping the GIL (csrc/fastpath.c says why and how).",
    .m_size = 0,
    .m_slots = fastpath_slots,
};

PyMODINIT_FUNC PyInit__fastpath(void) { return PyModuleDef_Init(&fastpath_module); }
