# The cosine phases of learning-rate schedules (skipnet.schedules: CosineLR, OneCycle), at about a
# nanosecond a step instead of a libm cosine each.
#
# The angle of step u of a phase is theta0 + u * delta. With h, l = divmod(u, block) it splits into
# theta0 + (h * block) * delta and l * delta, so by angle addition
#     cos(angle) = cos(A_h) cos(B_l) - sin(A_h) sin(B_l),   A_h = theta0 + (h * block) * delta,
#                                                           B_l = l * delta:
# a table of cos/sin of B_l (block entries) and one cos/sin per block of steps. Each of the two is in
# turn split the same way, with sub = isqrt(block): l = p * sub + q gives B_l from (p * sub) * delta and
# q * delta, and h = p * sub + q gives A_h from theta0 + (p * sub * block) * delta and (q * block) *
# delta, so a run of L steps takes about 4 L**(1/4) libm sines and cosines instead of 2 L**(1/2) (a
# 20,000-step phase: 48 pairs for 283). cosine_rates (a run of consecutive steps) and cosine_rates_at
# (any steps) evaluate the same expressions from the same libm values, so a step's rate has the same
# bits whichever is asked. block ~ sqrt(phase length) keeps the tables small; it is part of the
# schedule's definition (a pure function of its settings).

from libc.math cimport ceil, cos, floor, isfinite, pow, sin


cdef void angle_cos_sin(double angle, double* c, double* s) noexcept nogil:
    """cos and sin of one angle: the one place the functions below take them from."""
    c[0] = cos(angle)
    s[0] = sin(angle)


cdef inline void rotate(double c1, double s1, double c2, double s2, double* c, double* s) noexcept nogil:
    """cos and sin of a sum of two angles from theirs."""
    c[0] = c1 * c2 - s1 * s2
    s[0] = s1 * c2 + c1 * s2


cdef Py_ssize_t isqrt(Py_ssize_t n) noexcept nogil:
    """The integer square root of n >= 1."""
    cdef Py_ssize_t r = <Py_ssize_t>sqrt(<double>n)
    while r * r > n:
        r -= 1
    while (r + 1) * (r + 1) <= n:
        r += 1
    return r


cdef inline double cosine_rate(double offset, double scale, double ca, double sa, double cb,
                               double sb) noexcept nogil:
    # ew_cosine_block_d's formula (elementwise.h), operation for operation: the same bits as a run's.
    # 1 + cos may round below 0 near an angle of pi: held at 0, so a rate never falls below offset
    cdef double rise = 1.0 + (ca * cb - sa * sb)
    return offset + scale * (rise if rise > 0.0 else 0.0)


cdef double cosine_at(double offset, double scale, double theta0, double delta, Py_ssize_t block,
                      Py_ssize_t u) noexcept nogil:
    """The rate at step u of a phase: what cosine_rates_ptr computes for it, from the same libm values."""
    cdef Py_ssize_t sub = isqrt(block), h = u // block, l = u - h * block, hp = h // sub, lp = l // sub
    cdef double c1, s1, c2, s2, ca, sa, cb, sb
    angle_cos_sin(theta0 + <double>(hp * sub * block) * delta, &c1, &s1)
    angle_cos_sin(<double>((h - hp * sub) * block) * delta, &c2, &s2)
    rotate(c1, s1, c2, s2, &ca, &sa)
    angle_cos_sin(<double>(lp * sub) * delta, &c1, &s1)
    angle_cos_sin(<double>(l - lp * sub) * delta, &c2, &s2)
    rotate(c1, s1, c2, s2, &cb, &sb)
    return cosine_rate(offset, scale, ca, sa, cb, sb)


cdef Py_ssize_t cosine_work_size(Py_ssize_t block, Py_ssize_t n, Py_ssize_t first) noexcept nogil:
    """Doubles of room cosine_rates_ptr needs for a run of n steps from step first."""
    return 2 * min(block, n + first % block) + 4 * isqrt(block)


cdef void cosine_rates_ptr(double* out, Py_ssize_t n, Py_ssize_t first, double offset, double scale,
                           double theta0, double delta, Py_ssize_t block, double* work) noexcept nogil:
    """work: cosine_work_size(block, n, first) doubles."""
    cdef Py_ssize_t k = 0, u, h, l, l0 = first % block, stop, size = min(block, n + l0), sub = isqrt(block)
    cdef Py_ssize_t q, p = -1
    cdef double* cb = work
    cdef double* sb = work + size
    cdef double* qc = work + 2 * size  # cos, sin of q * delta, then of (q * block) * delta, q < sub
    cdef double* qs = qc + 2 * sub
    cdef double pc = 0.0, ps = 0.0, ca, sa
    for q in range(sub):
        angle_cos_sin(<double>q * delta, &qc[q], &qs[q])
        angle_cos_sin(<double>(q * block) * delta, &qc[sub + q], &qs[sub + q])
    # the l values the run reaches: l0 .. l0 + n - 1 when it stays in one block, else all
    for l in range(l0 if l0 + n <= block else 0, min(block, l0 + n)):
        if l // sub != p:
            p = l // sub
            angle_cos_sin(<double>(p * sub) * delta, &pc, &ps)
        q = l - p * sub
        rotate(pc, ps, qc[q], qs[q], &cb[l], &sb[l])
    p = -1
    while k < n:
        u = first + k
        h = u // block
        l = u - h * block
        if h // sub != p:
            p = h // sub
            angle_cos_sin(theta0 + <double>(p * sub * block) * delta, &pc, &ps)
        q = h - p * sub
        rotate(pc, ps, qc[sub + q], qs[sub + q], &ca, &sa)
        stop = min(n - k, block - l)
        ew_cosine_block_d(out + k, stop, offset, scale, ca, sa, cb + l, sb + l)  # elementwise.h
        k += stop


def _check_phase(Py_ssize_t block, double delta):
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    if not delta == delta:
        raise ValueError("delta must not be NaN")


def cosine_rates(double[::1] out, Py_ssize_t first, double offset, double scale, double theta0,
                 double delta, Py_ssize_t block):
    """out[k] = offset + scale * (1 + cos(theta0 + (first + k) * delta)) for every k, the cosine by
    angle addition over blocks of ``block`` steps (see this file's head). out: float64 (n,);
    first >= 0; block >= 1."""
    cdef Py_ssize_t n = out.shape[0]
    cdef double* work
    _check_phase(block, delta)
    if first < 0:
        raise ValueError(f"first must be >= 0, got {first}")
    if n == 0:
        return
    work = <double*>PyMem_Malloc(cosine_work_size(block, n, first) * sizeof(double))
    if work == NULL:
        raise MemoryError()
    with nogil:
        cosine_rates_ptr(&out[0], n, first, offset, scale, theta0, delta, block, work)
    PyMem_Free(work)


def cosine_rates_at(const int64_t[::1] steps, double[::1] out, double offset, double scale,
                    double theta0, double delta, Py_ssize_t block):
    """out[i] = cosine_rates' value at step steps[i] (each >= 0), bit for bit. steps: int64 (n,),
    out: float64 (n,)."""
    cdef Py_ssize_t i, n = steps.shape[0]
    _check_phase(block, delta)
    if out.shape[0] != n:
        raise ValueError(f"out must have {n} entries like steps, got {out.shape[0]}")
    for i in range(n):
        if steps[i] < 0:
            raise ValueError(f"steps must be >= 0, got {steps[i]}")
    with nogil:
        for i in range(n):
            out[i] = cosine_at(offset, scale, theta0, delta, block, steps[i])


# A schedule's whole plan as pieces (skipnet.schedules builds them in _plan): a flat tuple of P rows of 7
# numbers, row i being (begin, kind, a, b, c, d, block): the piece taking the positions from its begin up
# to the next piece's (the last: on and on). Kinds:
#     PIECE_CONSTANT  a
#     PIECE_LINEAR    b * ((t - c) / d) + a
#     PIECE_COSINE    a + b * (1 + cos(c + u * d)) at u = t - begin, as cosine_rates with block
#     PIECE_HOLD      the rate of the position before the piece begins (the last piece: a plan's end)
#     PIECE_GEOMETRIC a * b ** ((t - begin) // block): Python's float power (libm pow), the same bits
# One call fills a kernel call's rates (schedule_rates) or evaluates any positions (schedule_rates_at),
# from the same expressions: the same bits whichever is asked. A tuple, read into a C array per call:
# cheaper to make, per fit, than any array object.
cdef enum:
    ROW = 7  # numbers per piece
    ROWS_MAX = 8  # pieces at most
    CONSTANT = 0
    LINEAR = 1
    COSINE = 2
    HOLD = 3
    GEOMETRIC = 4
PIECE_COLUMNS, PIECES_MAX = ROW, ROWS_MAX
PIECE_CONSTANT, PIECE_LINEAR, PIECE_COSINE, PIECE_HOLD, PIECE_GEOMETRIC = CONSTANT, LINEAR, COSINE, HOLD, GEOMETRIC
# positions and blocks stay exact as doubles and as Py_ssize_t below it
cdef double _PIECE_MAX = 9007199254740992.0  # 2**53
cdef Py_ssize_t MAX_POSITION = 9007199254740992  # 2**53: the positions a plan is asked about


cdef inline double geometric_rate(const double* row, Py_ssize_t t) noexcept nogil:
    # base * gamma ** (t // step) as Python computes it for a float and an int (the int as a double, then
    # libm pow), so StepLR and ExponentialLR keep the bits of their formulas
    return row[2] * pow(row[3], <double>((t - <Py_ssize_t>row[0]) // <Py_ssize_t>row[6]))


cdef double piece_rate(const double* row, Py_ssize_t t) noexcept nogil:
    """The rate of a constant, linear, cosine or geometric piece at position t (>= its begin)."""
    cdef Py_ssize_t kind = <Py_ssize_t>row[1]
    if kind == CONSTANT:
        return row[2]
    if kind == LINEAR:
        return row[3] * ((<double>t - row[4]) / row[5]) + row[2]
    if kind == GEOMETRIC:
        return geometric_rate(row, t)
    return cosine_at(row[2], row[3], row[4], row[5], <Py_ssize_t>row[6], t - <Py_ssize_t>row[0])


cdef Py_ssize_t piece_at(const double* pieces, Py_ssize_t count, Py_ssize_t t) noexcept nogil:
    """The index of the piece position t falls in."""
    cdef Py_ssize_t i = count - 1
    while i > 0 and <double>t < pieces[i * ROW]:
        i -= 1
    return i


cdef double pieces_rate(const double* pieces, Py_ssize_t count, Py_ssize_t t) noexcept nogil:
    """The rate at position t."""
    cdef Py_ssize_t i = piece_at(pieces, count, t)
    if pieces[i * ROW + 1] == HOLD:  # held (the last piece, never the first): the rate of the position before it
        t = <Py_ssize_t>pieces[i * ROW] - 1
        i -= 1
    return piece_rate(pieces + i * ROW, t)


cdef bint _whole(double value) noexcept:
    """value is a whole number in [0, 2**53) (NaN is not)."""
    return 0 <= value < _PIECE_MAX and value == floor(value)


cdef Py_ssize_t read_pieces(tuple pieces, double* out) except -1:
    """Copy the flat tuple ``pieces`` into out (room for PIECES_MAX rows) and check it; returns P."""
    cdef Py_ssize_t size = len(pieces), count = size // PIECE_COLUMNS, i, j
    cdef double kind, begin
    if size % PIECE_COLUMNS or not 1 <= count <= PIECES_MAX:
        raise ValueError(f"pieces must be 1 to {PIECES_MAX} rows of {PIECE_COLUMNS} numbers, got {size} numbers")
    for i in range(size):
        out[i] = pieces[i]
    for i in range(count):
        begin, kind = out[i * ROW], out[i * ROW + 1]
        if not _whole(begin) or (i == 0) != (begin == 0) or (i and begin <= out[i * ROW - ROW]):
            raise ValueError(f"piece {i} begins at {begin}: the first must begin at 0, the others at whole "
                             "positions after the one before, below 2**53")
        if not (kind == CONSTANT or kind == LINEAR or kind == COSINE or kind == GEOMETRIC
                or (kind == HOLD and i == count - 1 and i > 0)):
            raise ValueError(f"piece {i} has kind {kind}: expected 0 (constant), 1 (linear), 2 (cosine), 3 "
                             "(held: the last piece, not the first) or 4 (geometric)")
        for j in range(2, 6):
            if kind != HOLD and not isfinite(out[i * ROW + j]):
                raise ValueError(f"piece {i} has a value that is not finite: {out[i * ROW + j]}")
        if kind == LINEAR and out[i * ROW + 5] == 0:
            raise ValueError(f"piece {i} is linear over a length (d) of 0")
        if (kind == COSINE or kind == GEOMETRIC) and not (_whole(out[i * ROW + 6]) and out[i * ROW + 6] >= 1):
            raise ValueError(f"piece {i} has block {out[i * ROW + 6]}: expected a whole number >= 1")
    return count


cdef Py_ssize_t pieces_work_size(const double* pieces, Py_ssize_t count, Py_ssize_t first,
                                 Py_ssize_t n) noexcept nogil:
    """Room for the largest work of a cosine a run of n positions from first reaches (cosine_rates_ptr)."""
    cdef Py_ssize_t i, begin, end, lo, hi, size = 0
    for i in range(count):
        if pieces[i * ROW + 1] != COSINE:
            continue
        begin = <Py_ssize_t>pieces[i * ROW]
        end = <Py_ssize_t>pieces[i * ROW + ROW] if i + 1 < count else first + n
        lo, hi = max(first, begin), min(first + n, end)
        if lo < hi:
            size = max(size, cosine_work_size(<Py_ssize_t>pieces[i * ROW + 6], hi - lo, lo - begin))
    return size


cdef int fill_pieces(const double* rows, Py_ssize_t count, Py_ssize_t first, double* out,
                     Py_ssize_t n) except -1:
    """out[k] = the rate of the read plan ``rows`` (count pieces) at position first + k, k < n; first >= 0."""
    cdef Py_ssize_t i, lo, hi, end, k, stop, size
    cdef const double* row
    cdef double* work = NULL
    cdef double held
    if n <= 0:
        return 0
    size = pieces_work_size(rows, count, first, n)
    if size:
        work = <double*>PyMem_Malloc(size * sizeof(double))
        if work == NULL:
            raise MemoryError()
    with nogil:
        for i in range(piece_at(rows, count, first), count):
            row = rows + i * ROW
            lo = max(first, <Py_ssize_t>row[0])
            end = <Py_ssize_t>row[ROW] if i + 1 < count else first + n
            hi = min(first + n, end)
            if lo >= hi:
                break
            if row[1] == COSINE:
                cosine_rates_ptr(&out[lo - first], hi - lo, lo - <Py_ssize_t>row[0], row[2], row[3], row[4],
                                 row[5], <Py_ssize_t>row[6], work)
            elif row[1] == LINEAR:
                for k in range(lo, hi):
                    out[k - first] = piece_rate(row, k)
            elif row[1] == GEOMETRIC:  # one power per block of positions
                k = lo
                while k < hi:
                    held = geometric_rate(row, k)
                    stop = min(hi, k + <Py_ssize_t>row[6] - (k - <Py_ssize_t>row[0]) % <Py_ssize_t>row[6])
                    while k < stop:
                        out[k - first] = held
                        k += 1
            else:
                held = row[2] if row[1] == CONSTANT else pieces_rate(rows, i, <Py_ssize_t>row[0] - 1)
                for k in range(lo, hi):
                    out[k - first] = held
    PyMem_Free(work)
    return 0


def schedule_rates(tuple pieces, Py_ssize_t first, double[::1] out):
    """out[k] = the rate of the schedule ``pieces`` (this part's head) at position first + k. pieces: a
    flat tuple of P rows of 7 numbers; first >= 0; out: float64 (n,)."""
    cdef double rows[ROWS_MAX * ROW]
    cdef Py_ssize_t count = read_pieces(pieces, rows)
    if first < 0:
        raise ValueError(f"first must be >= 0, got {first}")
    fill_pieces(rows, count, first, &out[0] if out.shape[0] else NULL, out.shape[0])


def schedule_epoch_rates(tuple pieces, Py_ssize_t first_epoch, Py_ssize_t first_step, Py_ssize_t steps_per_epoch,
                         double[::1] out):
    """out[k] = the rate of the per-epoch schedule ``pieces`` in the epoch of step k of a kernel call that
    begins at step first_step of epoch first_epoch: its value at position first_epoch + (first_step + k) //
    steps_per_epoch (schedule_rates' bits). first_epoch >= 0, 0 <= first_step < steps_per_epoch."""
    cdef double rows[ROWS_MAX * ROW]
    cdef Py_ssize_t count = read_pieces(pieces, rows), k = 0, n = out.shape[0], stop, epoch = first_epoch
    cdef double rate
    if first_epoch < 0 or not 0 <= first_step < steps_per_epoch:
        raise ValueError(f"first_epoch must be >= 0 and first_step lie in [0, steps_per_epoch), got {first_epoch}, "
                         f"{first_step}, {steps_per_epoch}")
    with nogil:
        stop = min(n, steps_per_epoch - first_step)
        while k < n:
            rate = pieces_rate(rows, count, epoch)
            while k < stop:
                out[k] = rate
                k += 1
            epoch += 1
            stop = min(n, k + steps_per_epoch)


def schedule_rate(tuple pieces, Py_ssize_t position):
    """schedule_rates' value at one position (>= 0), bit for bit: a step's rate without arrays."""
    cdef double rows[ROWS_MAX * ROW]
    cdef Py_ssize_t count = read_pieces(pieces, rows)
    if position < 0:
        raise ValueError(f"position must be >= 0, got {position}")
    return pieces_rate(rows, count, position)


def schedule_rates_at(tuple pieces, const int64_t[::1] positions, double[::1] out):
    """out[i] = schedule_rates' value at position positions[i] (each >= 0), bit for bit. positions: int64
    (n,), out: float64 (n,)."""
    cdef double rows[ROWS_MAX * ROW]
    cdef Py_ssize_t i, n = positions.shape[0], count = read_pieces(pieces, rows)
    if out.shape[0] != n:
        raise ValueError(f"out must have {n} entries like positions, got {out.shape[0]}")
    for i in range(n):
        if positions[i] < 0:
            raise ValueError(f"positions must be >= 0, got {positions[i]}")
    with nogil:
        for i in range(n):
            out[i] = pieces_rate(rows, count, positions[i])


# The plans of the built-in schedules with pieces (skipnet.schedules.CosineLR, OneCycle, whose docstrings
# give the formulas): made at the start of every fit, so made here in one call.

cdef double _PI = 3.141592653589793  # math.pi


cdef Py_ssize_t phase_block(Py_ssize_t length) noexcept:
    """The block of a cosine phase of ``length`` steps: the integer square root of max(1, length), so the
    tables of the angle addition stay small (part of the schedule's definition)."""
    return isqrt(max(1, length))


cdef Py_ssize_t plan_length(object steps, str schedule) except -1:
    """A plan's length in steps (or epochs), within the positions pieces take."""
    if not 0 <= steps < _PIECE_MAX:
        raise ValueError(f"{schedule} plans fewer than 2**53 positions, this fit would have {steps}")
    return steps


def cosine_plan(object planned_steps, Py_ssize_t warmup, double base_lr, double min_lr, double start_factor):
    """CosineLR's pieces: from base_lr * start_factor up to base_lr over ``warmup`` steps, the cosine from
    base_lr down to min_lr until ``planned_steps`` (> warmup >= 0), then min_lr, held."""
    cdef Py_ssize_t planned = plan_length(planned_steps, "CosineLR"), length = planned - warmup
    if not 0 <= warmup < planned:
        raise ValueError(f"a cosine plan needs 0 <= warmup < planned, got warmup={warmup}, planned={planned}")
    cosine = (warmup, COSINE, min_lr, (base_lr - min_lr) / 2.0, 0.0, _PI / length, phase_block(length),
              planned, CONSTANT, min_lr, 0.0, 0.0, 0.0, 0)
    if warmup == 0:
        return cosine
    return (0, LINEAR, base_lr * start_factor, base_lr * (1.0 - start_factor), 0.0, warmup, 0) + cosine


def one_cycle_plan(object total_steps, double pct_start, double peak, double div_factor,
                   double final_div_factor, bint three_phase, bint cosine):
    """OneCycle's pieces (torch's breakpoints): from peak / div_factor up to peak by step pct_start * total
    - 1, (three_phase: back down to peak / div_factor by step 2 pct_start total - 2,) then down to peak /
    div_factor / final_div_factor at step total - 1, by cosine or straight line; that rate held after."""
    cdef Py_ssize_t total = plan_length(total_steps, "OneCycle")
    cdef double initial = peak / div_factor, final = initial / final_div_factor
    cdef double rise_end = pct_start * total - 1, begin = 0.0, end, first, last, delta
    cdef Py_ssize_t i, start, n_phases = 3 if three_phase else 2
    cdef double ends[3]
    cdef double firsts[3]
    cdef double lasts[3]
    if total < 2:
        raise ValueError(f"OneCycle needs at least 2 steps, the fit has {total}")
    if rise_end <= 0:
        raise ValueError(f"OneCycle: pct_start * total = {pct_start * total:g} must exceed 1 (the rise needs at "
                         "least two steps); raise pct_start or train longer")
    ends[0], firsts[0], lasts[0] = rise_end, initial, peak
    if three_phase:
        ends[1], firsts[1], lasts[1] = 2 * pct_start * total - 2, peak, initial
        ends[2], firsts[2], lasts[2] = total - 1, initial, final
    else:
        ends[1], firsts[1], lasts[1] = total - 1, peak, final
    # phase i takes the steps in (begin, end] (the first from 0, none when that is empty), its cosine at
    # position 0 on its first step
    pieces = ()
    for i in range(n_phases):
        end, first, last = ends[i], firsts[i], lasts[i]
        start = 0 if i == 0 else <Py_ssize_t>floor(begin) + 1
        if start <= end:
            if cosine:
                delta = _PI / (end - begin)
                pieces += (start, COSINE, last, (first - last) / 2.0, (start - begin) * delta, delta,
                           phase_block(<Py_ssize_t>ceil(end - begin)))
            else:
                pieces += (start, LINEAR, first, last - first, begin, end - begin, 0)
        begin = end
    return pieces + (total, HOLD, 0.0, 0.0, 0.0, 0.0, 0)
