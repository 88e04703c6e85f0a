/* A network's plan, as the fused loops run it: one struct per layer and one per skip. train.pxi's
 * FusedNet fills it once from the engine's plan (skipnet/_engine.py), and both the batch loop
 * (train.pxi's forward_pass / backward_pass) and the scalar loop (scalar.h) read these same arrays.
 *
 * Skips are sorted by destination (then by the order their contributions are added), so the skips into
 * layer k are skips[skip_begin, skip_end).
 */
#ifndef SKIPNET_PLAN_H
#define SKIPNET_PLAN_H

#include <stddef.h>

typedef struct {
    /* the scalar path reads these (its compiled-in shapes give them in this order, scalar.h) */
    ptrdiff_t w, b;            /* offsets of the weight and (if bias) the bias in the parameters */
    int relu, bias;
    int dense_acc;             /* the contribution to dh[k-1] adds to it (else it is the first) */
    int skip_begin, skip_end;  /* skips into this layer: [begin, end) of the skip list */
    /* the batch path's too */
    ptrdiff_t width, in_width; /* units, and the width of the layer's input */
    ptrdiff_t z, h, dh;        /* workspace offsets of z, h and dh (batch x width each; h == z without ReLU) */
} plan_layer;

typedef struct {
    ptrdiff_t src;             /* source layer, -1 for the input */
    ptrdiff_t weight;          /* offset of the learned weight, -1 for an identity skip */
    int acc;                   /* the contribution to dh[src] adds to it */
    ptrdiff_t width;           /* width of the source */
} plan_skip;

#endif
