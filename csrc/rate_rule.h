/* ReduceLROnPlateau's rule (skipnet/schedules.py) applied by a fused chunk at the end of each epoch it
 * completes, so that a fit with that schedule needs no kernel call per patience window: the chunk's steps
 * read the rate in use (``current``) and the rule lowers it between epochs, as the Python rule would
 * between two calls. The arithmetic is the Python method's, operation for operation (double; no product
 * feeds an addition, so no FMA contraction can change a bit; ``max(current * factor, min_lr)`` keeps the
 * first of equal values; a NaN loss is never better), so the rates and the state after a call are the
 * ones ReduceLROnPlateau.epoch_end gives.
 */
#ifndef SKIPNET_RATE_RULE_H
#define SKIPNET_RATE_RULE_H

#include <math.h>
#include <stddef.h>

typedef struct rate_rule {
    int mode_max, rel;               /* mode "max" (else "min"), threshold_mode "rel" (else "abs") */
    double threshold, factor, min_lr, eps;
    ptrdiff_t patience, cooldown;
    double current, best;            /* IN/OUT the rate in use and the best loss so far */
    ptrdiff_t num_bad, cooldown_counter;  /* IN/OUT the rule's counters */
    double weight_total;             /* the epoch loss is the epoch's total / weight_total (as the Trainer's) */
    double *reduced;                 /* OUT per completed epoch of the chunk: the new rate after it, or NaN */
} rate_rule;

static inline void rate_rule_epoch(rate_rule *r, ptrdiff_t e, double loss)
{
    int better;
    if (r->mode_max)
        better = loss > (r->rel ? r->best * (1.0 + r->threshold) : r->best + r->threshold);
    else
        better = loss < (r->rel ? r->best * (1.0 - r->threshold) : r->best - r->threshold);
    r->reduced[e] = NAN;
    if (better) {
        r->best = loss;
        r->num_bad = 0;
    } else {
        r->num_bad += 1;
    }
    if (r->cooldown_counter > 0) {
        r->cooldown_counter -= 1;
        r->num_bad = 0;
    }
    if (r->num_bad > r->patience) {
        double scaled = r->current * r->factor;
        double next = r->min_lr > scaled ? r->min_lr : scaled;
        if (r->current - next > r->eps) {
            r->current = next;
            r->reduced[e] = next;
        }
        r->cooldown_counter = r->cooldown;
        r->num_bad = 0;
    }
}

/* Epochs from now during which the rate holds whatever the losses (ReduceLROnPlateau.fixed_epochs):
   the last of them is the first whose end may lower it. */
static inline ptrdiff_t rate_rule_fixed_epochs(const rate_rule *r)
{
    if (r->cooldown_counter > 0)
        return r->cooldown_counter + r->patience + 1;
    return r->patience - r->num_bad + 1;
}

#endif
