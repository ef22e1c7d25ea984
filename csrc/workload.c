/*
 * workload.c - a deterministic stand-in for guest execution.  Each step is a
 * pure function of the register file: it reads the program counter, mixes a
 * few general registers, sets the flags from the result, stirs a vector
 * register, and now and then a system register.  So a machine's state after
 * run(n) depends only on its state before - which is what lets tests check that
 * switching is invisible to it.
 */
#include "vsw_internal.h"
#include <string.h>

static uint64_t rd(const uint8_t *r, uint32_t off) { uint64_t v; memcpy(&v, r + off, 8); return v; }
static void wr(uint8_t *r, uint32_t off, uint64_t v) { memcpy(r + off, &v, 8); }
static uint64_t rotl(uint64_t x, unsigned k) { return (x << k) | (x >> (64 - k)); }

static int resolve(const struct vsw_layout_def *L, const char *name, uint32_t *off, uint32_t *group)
{
    int i = vsw_layout_field_index(L, name);
    if (i < 0)
        return i;
    *off = L->fields[i].offset;
    *group = L->fields[i].group;
    return 0;
}

int vsw_workload_bind(struct vsw_pcpu *p)
{
    const struct vsw_layout_def *L = p->L;
    const struct vsw_workload_def *w = L->workload;
    uint32_t g;
    for (p->ngpr = 0; w->gprs[p->ngpr]; p->ngpr++)
        if (resolve(L, w->gprs[p->ngpr], &p->gpr[p->ngpr], &p->gpr_group) < 0)
            return -ENOENT;
    for (p->nvec = 0; w->vectors[p->nvec]; p->nvec++)
        if (resolve(L, w->vectors[p->nvec], &p->vec[p->nvec], &p->vec_group[p->nvec]) < 0)
            return -ENOENT;
    for (p->nsys = 0; w->sysregs[p->nsys]; p->nsys++)
        if (resolve(L, w->sysregs[p->nsys], &p->sys[p->nsys], &p->sys_group[p->nsys]) < 0)
            return -ENOENT;
    if (resolve(L, w->pc, &p->pc, &g) < 0 || resolve(L, w->flags, &p->flags, &g) < 0)
        return -ENOENT;
    return 0;
}

int vsw_pcpu_run(struct vsw_pcpu *p, uint64_t steps)
{
    if (!p)
        return -EINVAL;
    int r = vsw_pcpu_enter_running(p);
    if (r < 0)
        return r;
    const struct vsw_workload_def *w = p->L->workload;
    uint8_t *R = p->regs;
    uint32_t dirty = 1u << p->gpr_group;
    for (uint64_t s = 0; s < steps; s++) {
        uint64_t pc = rd(R, p->pc);
        uint32_t i = (uint32_t)((pc >> 2) % p->ngpr), j = (i + 1) % p->ngpr;
        uint64_t a = rd(R, p->gpr[i]), b = rd(R, p->gpr[j]);
        uint64_t res = a * 0x5851f42d4c957f2dull + (b | 1) + pc;
        wr(R, p->gpr[i], res);
        wr(R, p->gpr[j], rotl(b ^ res, 17));
        uint64_t fl = rd(R, p->flags) & ~(w->flag_zero | w->flag_sign | w->flag_carry);
        fl |= w->flag_fixed | (res == 0 ? w->flag_zero : 0) | (res >> 63 ? w->flag_sign : 0) |
              (res < a ? w->flag_carry : 0);
        wr(R, p->flags, fl);
        uint32_t v = (uint32_t)((pc >> 4) % p->nvec);
        wr(R, p->vec[v], rotl(rd(R, p->vec[v]), 9) ^ res);
        wr(R, p->vec[v] + 8, rd(R, p->vec[v] + 8) + (res >> 7));
        dirty |= 1u << p->vec_group[v];
        if ((pc & 0xfc) == 0) {
            uint32_t k = (uint32_t)((pc >> 8) % p->nsys);
            wr(R, p->sys[k], (rd(R, p->sys[k]) ^ res) & ~0xfffull);
            dirty |= 1u << p->sys_group[k];
        }
        wr(R, p->pc, pc + 4);
    }
    if (steps)
        p->dirty |= dirty;
    p->now_ps += steps * VSW_PS_PER_US / p->cpu_mhz;
    vsw_pcpu_leave(p);
    return 0;
}
