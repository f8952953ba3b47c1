/* SPDX-License-Identifier: Apache-2.0 */
/* `twinctl scenario run` options into a ScenarioRequest: disruptions (--down, --maintain,
 * --slow, --supplier-late, --demand with --at/--for/--by), parameter changes, run settings and
 * a sweep. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scenario_cmd.h"
#include "twin/clock.h"

#define H_MS 3600000.0

/* ---- values -------------------------------------------------------------------------------- */

static int parse_double(const char *opt, const char *v, double *out)
{
    char *end = NULL;
    errno = 0;
    *out = strtod(v, &end);
    if (end == v || *end || errno == ERANGE || !isfinite(*out))
        return ctl_usage_error("%s: \"%.64s\" is not a number", opt, v);
    return 0;
}

static int parse_u64(const char *opt, const char *v, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || *end || errno == ERANGE || v[0] == '-' || n > max)
        return ctl_usage_error("%s: \"%.64s\" is not a whole number up to %llu", opt, v,
                               (unsigned long long)max);
    *out = n;
    return 0;
}

static int parse_dur(const char *opt, const char *v, int64_t *ms)
{
    if (ctl_parse_duration(v, ms) < 0)
        return ctl_usage_error("%s: \"%.64s\" is not a duration (0, 45s, 90m, 4h, 2d, 1w, 1h30m)",
                               opt, v);
    return 0;
}

/* "PATH=REST": the path into path[], *rest after the '='. */
static int split_path(const char *opt, const char *v, char *path, const char **rest)
{
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || (size_t)(eq - v) >= SCN_PATH_MAX)
        return ctl_usage_error("%s: expected PATH=..., got \"%.64s\"", opt, v);
    memcpy(path, v, (size_t)(eq - v));
    path[eq - v] = '\0';
    *rest = eq + 1;
    return 0;
}

/* ---- disruptions ------------------------------------------------------------------------- */

static struct scen_perturbation *new_perturb(struct run_opts *o, int kind, const char *target)
{
    struct scen_request *r = &o->req;
    if (r->n_perturb == SCEN_WIRE_MAX_PERTURB) {
        ctl_usage_error("too many disruptions and --set (at most %u)", SCEN_WIRE_MAX_PERTURB);
        return NULL;
    }
    if (strlen(target) >= SCN_PATH_MAX) {
        ctl_usage_error("\"%.64s...\" is too long", target);
        return NULL;
    }
    struct scen_perturbation *p = &r->perturb[r->n_perturb++];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    snprintf(p->target, sizeof(p->target), "%s", target);
    return p;
}

static int opt_down(struct run_opts *o, const char *opt, const char *v)
{
    (void)opt;
    o->last = new_perturb(o, SCEN_P_MACHINE_DOWN, v);
    return o->last ? 0 : CTL_EXIT_USAGE;
}

static int opt_maintain(struct run_opts *o, const char *opt, const char *v)
{
    (void)opt;
    o->last = new_perturb(o, SCEN_P_MAINTAIN, v);
    return o->last ? 0 : CTL_EXIT_USAGE;
}

/* "TARGET=SPEED", the speed a fraction of nominal in (0, 1]. */
static int opt_slow(struct run_opts *o, const char *opt, const char *v)
{
    char target[SCN_PATH_MAX];
    const char *eq = strrchr(v, '=');
    double speed = 0;
    if (!eq || eq == v || (size_t)(eq - v) >= sizeof(target))
        return ctl_usage_error("%s: expected TARGET=SPEED (press-1=0.8), got \"%.64s\"", opt, v);
    memcpy(target, v, (size_t)(eq - v));
    target[eq - v] = '\0';
    if (parse_double(opt, eq + 1, &speed) != 0)
        return CTL_EXIT_USAGE;
    if (!(speed > 0) || speed > 1)
        return ctl_usage_error("%s: the speed must be in (0, 1] (0.8: 80 %% of nominal)", opt);
    o->last = new_perturb(o, SCEN_P_SLOW, target);
    if (!o->last)
        return CTL_EXIT_USAGE;
    o->last->factor = speed;
    return 0;
}

static int opt_supplier_late(struct run_opts *o, const char *opt, const char *v)
{
    (void)opt;
    o->last = new_perturb(o, SCEN_P_SUPPLIER_LATE, v);
    return o->last ? 0 : CTL_EXIT_USAGE;
}

static int opt_demand(struct run_opts *o, const char *opt, const char *v)
{
    double f = 0;
    if (parse_double(opt, v, &f) != 0)
        return CTL_EXIT_USAGE;
    if (f < 0)
        return ctl_usage_error("%s: the factor must be >= 0", opt);
    o->last = new_perturb(o, SCEN_P_DEMAND_FACTOR, "demand");
    if (!o->last)
        return CTL_EXIT_USAGE;
    o->last->factor = f;
    return 0;
}

#define KIND(k) (1u << (k))

/* The disruption an --at/--for/--by/--count belongs to: the last one named. */
static struct scen_perturbation *last_of(struct run_opts *o, const char *opt, unsigned kinds,
                                         const char *which)
{
    if (!o->last || !(kinds & KIND(o->last->kind))) {
        ctl_usage_error("%s must follow the %s it belongs to", opt, which);
        return NULL;
    }
    return o->last;
}

static int opt_at(struct run_opts *o, const char *opt, const char *v)
{
    struct scen_perturbation *p =
        last_of(o, opt,
                KIND(SCEN_P_MACHINE_DOWN) | KIND(SCEN_P_MAINTAIN) | KIND(SCEN_P_SLOW) |
                    KIND(SCEN_P_SUPPLIER_LATE) | KIND(SCEN_P_DEMAND_FACTOR),
                "--down, --maintain, --slow, --supplier-late or --demand");
    if (p && strcmp(v, "shift") == 0) {
        p->start_ms = CTL_AT_SHIFT;
        return 0;
    }
    return p ? parse_dur(opt, v, &p->start_ms) : CTL_EXIT_USAGE;
}

static int opt_model(struct run_opts *o, const char *opt, const char *v)
{
    (void)opt;
    o->model_path = v;
    return 0;
}

static int opt_for(struct run_opts *o, const char *opt, const char *v)
{
    struct scen_perturbation *p = last_of(o, opt,
                                          KIND(SCEN_P_MACHINE_DOWN) | KIND(SCEN_P_MAINTAIN) |
                                              KIND(SCEN_P_SLOW) | KIND(SCEN_P_DEMAND_FACTOR),
                                          "--down, --maintain, --slow or --demand");
    return p ? parse_dur(opt, v, &p->duration_ms) : CTL_EXIT_USAGE;
}

static int opt_wear_exponent(struct run_opts *o, const char *opt, const char *v)
{
    double e = 0;
    struct scen_perturbation *p = last_of(o, opt, KIND(SCEN_P_SLOW), "--slow");
    if (!p || parse_double(opt, v, &e) != 0)
        return CTL_EXIT_USAGE;
    if (e < 0 || e > SIM_MAX_WEAR_EXPONENT)
        return ctl_usage_error("%s must be from 0 to %g", opt, SIM_MAX_WEAR_EXPONENT);
    p->value = e;
    return 0;
}

static int opt_by(struct run_opts *o, const char *opt, const char *v)
{
    struct scen_perturbation *p = last_of(o, opt, KIND(SCEN_P_SUPPLIER_LATE), "--supplier-late");
    return p ? parse_dur(opt, v, &p->delay_ms) : CTL_EXIT_USAGE;
}

static int opt_count(struct run_opts *o, const char *opt, const char *v)
{
    uint64_t n = 0;
    struct scen_perturbation *p = last_of(o, opt, KIND(SCEN_P_SUPPLIER_LATE), "--supplier-late");
    if (!p || parse_u64(opt, v, UINT32_MAX, &n) != 0)
        return CTL_EXIT_USAGE;
    p->count = (uint32_t)n;
    return 0;
}

static int opt_set(struct run_opts *o, const char *opt, const char *v)
{
    char path[SCN_PATH_MAX];
    const char *rest = NULL;
    double value = 0;
    if (split_path(opt, v, path, &rest) != 0 || parse_double(opt, rest, &value) != 0)
        return CTL_EXIT_USAGE;
    struct scen_perturbation *p = new_perturb(o, SCEN_P_SET_PARAMETER, path);
    if (!p)
        return CTL_EXIT_USAGE;
    p->value = value;
    return 0;
}

/* ---- run settings -------------------------------------------------------------------------- */

static int opt_horizon(struct run_opts *o, const char *opt, const char *v)
{
    if (parse_dur(opt, v, &o->req.horizon_ms) != 0)
        return CTL_EXIT_USAGE;
    return o->req.horizon_ms > 0 ? 0 : ctl_usage_error("%s must be longer than 0", opt);
}

static int opt_warmup(struct run_opts *o, const char *opt, const char *v)
{
    return parse_dur(opt, v, &o->req.warmup_ms);
}

static int opt_replications(struct run_opts *o, const char *opt, const char *v)
{
    uint64_t n = 0;
    if (parse_u64(opt, v, SCN_MAX_REPLICATIONS, &n) != 0)
        return CTL_EXIT_USAGE;
    if (n == 0)
        return ctl_usage_error("%s must be at least 1", opt);
    o->req.replications = (uint32_t)n;
    return 0;
}

static int opt_seed(struct run_opts *o, const char *opt, const char *v)
{
    return parse_u64(opt, v, UINT64_MAX, &o->req.seed);
}

static int opt_id(struct run_opts *o, const char *opt, const char *v)
{
    if (!scen_valid_id(v))
        return ctl_usage_error("%s: 1-%u characters of [A-Za-z0-9._-]", opt, SCEN_ID_MAX);
    snprintf(o->req.id, sizeof(o->req.id), "%s", v);
    return 0;
}

static int opt_name(struct run_opts *o, const char *opt, const char *v)
{
    if (strlen(v) > SCEN_NAME_MAX)
        return ctl_usage_error("%s: at most %u bytes", opt, SCEN_NAME_MAX);
    snprintf(o->req.name, sizeof(o->req.name), "%s", v);
    return 0;
}

static int opt_timeout(struct run_opts *o, const char *opt, const char *v)
{
    if (parse_dur(opt, v, &o->timeout_ms) != 0)
        return CTL_EXIT_USAGE;
    return o->timeout_ms > 0 ? 0 : ctl_usage_error("%s must be longer than 0", opt);
}

/* ---- sweep --------------------------------------------------------------------------------- */

/* "MIN:MAX[:STEP]" or "V1,V2,...". */
static int parse_range(const char *opt, const char *spec, struct scn_range *r)
{
    char buf[4096];
    if (strlen(spec) >= sizeof(buf))
        return ctl_usage_error("%s: the list is too long", opt);
    snprintf(buf, sizeof(buf), "%s", spec);
    if (strchr(buf, ',') || !strchr(buf, ':')) {
        double *v = calloc(SCN_MAX_VALUES, sizeof(*v));
        size_t n = 0;
        if (!v)
            return ctl_usage_error("out of memory");
        r->values = v;
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (n == SCN_MAX_VALUES)
                return ctl_usage_error("%s: at most %u values", opt, SCN_MAX_VALUES);
            if (parse_double(opt, t, &v[n++]) != 0)
                return CTL_EXIT_USAGE;
        }
        r->n_values = n;
        return n > 0 ? 0 : ctl_usage_error("%s: no values", opt);
    }
    char *a = buf, *b = strchr(a, ':'), *c;
    *b++ = '\0';
    c = strchr(b, ':');
    if (c)
        *c++ = '\0';
    if (parse_double(opt, a, &r->min) != 0 || parse_double(opt, b, &r->max) != 0 ||
        (c && parse_double(opt, c, &r->step) != 0))
        return CTL_EXIT_USAGE;
    if (r->max < r->min)
        return ctl_usage_error("%s: MAX is below MIN", opt);
    if (c && r->step <= 0)
        return ctl_usage_error("%s: STEP must be > 0", opt);
    return 0;
}

static int opt_sweep(struct run_opts *o, const char *opt, const char *v)
{
    struct scn_sweep *s = &o->req.sweep;
    const char *rest = NULL;
    if (s->n_params == SCN_MAX_SWEEP_PARAMS)
        return ctl_usage_error("at most %u --sweep parameters", SCN_MAX_SWEEP_PARAMS);
    struct scn_range *r = &s->params[s->n_params++];
    if (split_path(opt, v, r->path, &rest) != 0)
        return CTL_EXIT_USAGE;
    o->req.has_sweep = true;
    return parse_range(opt, rest, r);
}

static int opt_samples(struct run_opts *o, const char *opt, const char *v)
{
    uint64_t n = 0;
    if (parse_u64(opt, v, SCN_MAX_VARIANTS, &n) != 0)
        return CTL_EXIT_USAGE;
    if (n == 0)
        return ctl_usage_error("%s must be at least 1", opt);
    o->req.sweep.method = strcmp(opt, "--lhs") == 0 ? SCN_SWEEP_LHS : SCN_SWEEP_RANDOM;
    o->req.sweep.samples = (uint32_t)n;
    o->sampled = true;
    return 0;
}

static int opt_objective(struct run_opts *o, const char *opt, const char *v)
{
    if (strlen(v) >= SCN_PATH_MAX)
        return ctl_usage_error("%s: too long", opt);
    snprintf(o->req.sweep.objective, sizeof(o->req.sweep.objective), "%s", v);
    return 0;
}

static int opt_direction(struct run_opts *o, const char *opt, const char *v)
{
    (void)v;
    o->req.sweep.maximize = strcmp(opt, "--maximize") == 0;
    o->direction_given = true;
    return 0;
}

/* "KPI>=X" or "KPI<=X"; a second bound of the same KPI joins the first. */
static int opt_constraint(struct run_opts *o, const char *opt, const char *v)
{
    struct scn_sweep *s = &o->req.sweep;
    const char *ge = strstr(v, ">="), *le = strstr(v, "<="), *op = ge ? ge : le;
    char kpi[SCN_PATH_MAX];
    double x = 0;
    if (!op || op == v || (size_t)(op - v) >= sizeof(kpi))
        return ctl_usage_error("%s: expected KPI>=X or KPI<=X, got \"%.64s\"", opt, v);
    memcpy(kpi, v, (size_t)(op - v));
    kpi[op - v] = '\0';
    if (parse_double(opt, op + 2, &x) != 0)
        return CTL_EXIT_USAGE;
    size_t i = 0;
    while (i < s->n_constraints && strcmp(s->constraints[i].kpi, kpi) != 0)
        i++;
    if (i == SCN_MAX_CONSTRAINTS)
        return ctl_usage_error("at most %u constrained KPIs", SCN_MAX_CONSTRAINTS);
    struct scn_constraint *c = &s->constraints[i];
    if (i == s->n_constraints) {
        memset(c, 0, sizeof(*c));
        snprintf(c->kpi, sizeof(c->kpi), "%s", kpi);
        s->n_constraints++;
    }
    if (op == ge) {
        c->has_min = true;
        c->min = x;
    } else {
        c->has_max = true;
        c->max = x;
    }
    return 0;
}

static int opt_cost(struct run_opts *o, const char *opt, const char *v)
{
    const char *rest = NULL;
    if (o->n_costs == CTL_MAX_COSTS)
        return ctl_usage_error("too many %s", opt);
    struct ctl_cost *c = &o->costs[o->n_costs];
    if (split_path(opt, v, c->path, &rest) != 0 || parse_double(opt, rest, &c->weight) != 0)
        return CTL_EXIT_USAGE;
    o->n_costs++;
    return 0;
}

static int opt_top(struct run_opts *o, const char *opt, const char *v)
{
    uint64_t n = 0;
    if (parse_u64(opt, v, SCEN_MAX_TOP, &n) != 0)
        return CTL_EXIT_USAGE;
    o->req.sweep.top = (uint32_t)n;
    return 0;
}

static int opt_flag(struct run_opts *o, const char *opt, const char *v)
{
    (void)v;
    if (strcmp(opt, "--ignore-live") == 0)
        o->req.ignore_live = true;
    else if (strcmp(opt, "--json") == 0)
        o->json = true;
    else if (strcmp(opt, "--all") == 0)
        o->all = true;
    else
        o->quiet = true;
    return 0;
}

/* ---- the table ----------------------------------------------------------------------------- */

struct opt_def {
    const char *name;
    bool value;
    int (*fn)(struct run_opts *o, const char *opt, const char *v);
};

static const struct opt_def run_opts_table[] = {
    {"--down", true, opt_down},
    {"--maintain", true, opt_maintain},
    {"--slow", true, opt_slow},
    {"--wear-exponent", true, opt_wear_exponent},
    {"--supplier-late", true, opt_supplier_late},
    {"--demand", true, opt_demand},
    {"--at", true, opt_at},
    {"--model", true, opt_model},
    {"--for", true, opt_for},
    {"--by", true, opt_by},
    {"--count", true, opt_count},
    {"--set", true, opt_set},
    {"--horizon", true, opt_horizon},
    {"--warmup", true, opt_warmup},
    {"--replications", true, opt_replications},
    {"--seed", true, opt_seed},
    {"--id", true, opt_id},
    {"--name", true, opt_name},
    {"--timeout", true, opt_timeout},
    {"--sweep", true, opt_sweep},
    {"--lhs", true, opt_samples},
    {"--random", true, opt_samples},
    {"--objective", true, opt_objective},
    {"--maximize", false, opt_direction},
    {"--minimize", false, opt_direction},
    {"--constraint", true, opt_constraint},
    {"--cost", true, opt_cost},
    {"--top", true, opt_top},
    {"--ignore-live", false, opt_flag},
    {"--json", false, opt_flag},
    {"--all", false, opt_flag},
    {"--quiet", false, opt_flag},
};

static int apply_costs(struct run_opts *o)
{
    for (size_t i = 0; i < o->n_costs; i++) {
        size_t k = 0;
        while (k < o->req.sweep.n_params && strcmp(o->req.sweep.params[k].path, o->costs[i].path))
            k++;
        if (k == o->req.sweep.n_params)
            return ctl_usage_error("--cost %s: not a --sweep parameter", o->costs[i].path);
        o->req.sweep.params[k].cost = o->costs[i].weight;
    }
    return 0;
}

/* Options that only make sense together. */
static int check_coherence(struct run_opts *o)
{
    const struct scen_request *r = &o->req;
    for (size_t i = 0; i < r->n_perturb; i++) {
        if (r->perturb[i].kind == SCEN_P_SUPPLIER_LATE && r->perturb[i].delay_ms <= 0)
            return ctl_usage_error("--supplier-late %s needs --by DURATION", r->perturb[i].target);
        if (r->perturb[i].kind == SCEN_P_MAINTAIN && r->perturb[i].duration_ms <= 0)
            return ctl_usage_error("--maintain %s needs --for DURATION (longer than 0)",
                                   r->perturb[i].target);
    }
    if (!r->has_sweep) {
        if (o->sampled || r->sweep.objective[0] || r->sweep.n_constraints || o->n_costs ||
            o->direction_given || r->sweep.top)
            return ctl_usage_error("--lhs, --random, --objective, --maximize, --minimize, "
                                   "--constraint, --cost and --top need --sweep");
        return 0;
    }
    if (!r->sweep.objective[0] || !o->direction_given)
        return ctl_usage_error("a sweep needs --objective KPI and --maximize or --minimize");
    for (size_t i = 0; i < r->sweep.n_params; i++)
        if (!o->sampled && r->sweep.params[i].n_values == 0 && r->sweep.params[i].step <= 0)
            return ctl_usage_error("--sweep %s: give a STEP (PATH=MIN:MAX:STEP) or values, or "
                                   "sample with --lhs N or --random N",
                                   r->sweep.params[i].path);
    return apply_costs(o);
}

/* A readable name from the disruptions when --name is not given. */
static void default_name(struct run_opts *o)
{
    struct scen_request *r = &o->req;
    size_t used = 0;
    for (size_t i = 0; i < r->n_perturb && used + 1 < sizeof(r->name); i++) {
        const struct scen_perturbation *p = &r->perturb[i];
        char part[256];
        if (p->kind == SCEN_P_MACHINE_DOWN)
            snprintf(part, sizeof(part), "%s down %.4g h", p->target,
                     p->duration_ms ? (double)p->duration_ms / H_MS : INFINITY);
        else if (p->kind == SCEN_P_MAINTAIN)
            snprintf(part, sizeof(part), "%s maintained %.4g h", p->target,
                     (double)p->duration_ms / H_MS);
        else if (p->kind == SCEN_P_SLOW)
            snprintf(part, sizeof(part), "%s at %.4g %% speed", p->target, p->factor * 100);
        else if (p->kind == SCEN_P_SUPPLIER_LATE)
            snprintf(part, sizeof(part), "%s %.4g h late", p->target, (double)p->delay_ms / H_MS);
        else if (p->kind == SCEN_P_DEMAND_FACTOR)
            snprintf(part, sizeof(part), "demand x%.4g", p->factor);
        else
            snprintf(part, sizeof(part), "%s=%.6g", p->target, p->value);
        used += (size_t)snprintf(r->name + used, sizeof(r->name) - used, "%s%s", used ? "; " : "",
                                 part);
    }
    if (r->has_sweep && used + 1 < sizeof(r->name))
        snprintf(r->name + used, sizeof(r->name) - used, "%ssweep of %zu parameters",
                 used ? "; " : "", r->sweep.n_params);
}

int ctl_run_opts_parse(struct run_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = 30 * 60 * 1000;
    snprintf(o->req.id, sizeof(o->req.id), "ctl-%llx-%lx", (unsigned long long)tw_now_ms(),
             (unsigned long)getpid());
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *eq = strchr(arg, '=');
        size_t len = eq && strncmp(arg, "--", 2) == 0 ? (size_t)(eq - arg) : strlen(arg);
        const struct opt_def *d = NULL;
        for (size_t k = 0; k < sizeof(run_opts_table) / sizeof(run_opts_table[0]); k++)
            if (strlen(run_opts_table[k].name) == len &&
                strncmp(run_opts_table[k].name, arg, len) == 0)
                d = &run_opts_table[k];
        if (!d)
            return ctl_usage_error("scenario run: unknown option \"%.64s\"", arg);
        const char *value = eq && len < strlen(arg) ? eq + 1 : NULL;
        if (d->value && !value) {
            if (i + 1 >= argc)
                return ctl_usage_error("%s: missing value", d->name);
            value = argv[++i];
        } else if (!d->value && value) {
            return ctl_usage_error("%s takes no value", d->name);
        }
        int rc = d->fn(o, d->name, value);
        if (rc != 0)
            return rc;
    }
    int rc = check_coherence(o);
    if (rc == 0)
        rc = ctl_resolve_at_shift(o);
    if (rc == 0 && !o->req.name[0])
        default_name(o);
    return rc;
}
