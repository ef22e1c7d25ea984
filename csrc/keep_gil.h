/*
 * keep_gil.h - short calls keep the GIL.
 *
 * cffi releases the GIL around every call it wraps.  For a call that takes
 * about 100 ns - one switch, one flag - dropping and re-taking the GIL costs
 * about a third as much again and lets no other thread get anything done in
 * the gap, so the calls named below keep it.  None of them blocks: a switch's
 * only wait is for a reader's bounded copy in another thread that runs without
 * the GIL, so holding it cannot deadlock.  Everything long - schedules, KVM_RUN,
 * image and store copies - still runs with the GIL released, and threads that
 * want to switch in parallel use vsw_run_schedule.
 *
 * Included after cffi's own definitions, so only the wrappers it generates
 * (named _cffi_f_<function>) see these macros; GCC folds the name comparison.
 */
#ifndef VSW_KEEP_GIL_H
#define VSW_KEEP_GIL_H
#include <string.h>

#define VSW_KEEPS_GIL(wrapper)                                                                      \
    (__builtin_strcmp((wrapper), "_cffi_f_vsw_switch_desc") == 0 ||                                \
     __builtin_strcmp((wrapper), "_cffi_f_vsw_pcpu_owner") == 0 ||                                 \
     __builtin_strcmp((wrapper), "_cffi_f_vsw_pcpu_mark_dirty") == 0)

/* nor do they touch errno (they return -errno), so cffi need not carry it
 * across them for ffi.errno: two calls through its thread-local state fewer */
#define VSW_ERRNO_CALL(wrapper, slot) (VSW_KEEPS_GIL(wrapper) ? (void)0 : ((void (*)(void))_cffi_exports[slot])())
#undef _cffi_restore_errno
#undef _cffi_save_errno
#define _cffi_restore_errno() VSW_ERRNO_CALL(__func__, 13)
#define _cffi_save_errno() VSW_ERRNO_CALL(__func__, 14)

#undef Py_BEGIN_ALLOW_THREADS
#undef Py_END_ALLOW_THREADS
#define Py_BEGIN_ALLOW_THREADS                                                                      \
    {                                                                                               \
        PyThreadState *_vsw_save = VSW_KEEPS_GIL(__func__) ? NULL : PyEval_SaveThread();
#define Py_END_ALLOW_THREADS                                                                        \
    if (_vsw_save)                                                                                  \
        PyEval_RestoreThread(_vsw_save);                                                            \
    }
#endif
