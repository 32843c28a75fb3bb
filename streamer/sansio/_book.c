/* The C twin of streamer/sansio/book.py: the same book, the same verdicts, faster.
 *
 * book.py is the reference: every rule here mirrors one there, and a differential fuzz in the
 * tests (tests/unit/test_book_differential.py) requires identical books, spellings, exponents
 * and verdicts. Read book.py first; this file only adds what C needs:
 *
 *  - A side is an array of int64 keys sorted so the best level is last (key = price mantissa
 *    for bids, minus the mantissa for asks), found by a branch-free binary search, beside an
 *    array of slots: the price string as first received (a level is inserted rarely) and the
 *    quantity as an int64 mantissa plus its number of decimals. The first read formats the
 *    quantity back (and keeps it), which gives exactly the string received whenever that was
 *    canonical (no leading zero, no bare dot, at most 18 decimals, fits an int64): Binance's
 *    spelling always is, its capped "92233720368.54775807" included. Any other valid spelling
 *    is kept as the string.
 *    Holding integers instead of the decoded strings means the decoded frame dies young, while
 *    it is still in the cache: that, not the arithmetic, is most of the speed.
 *  - The journal of touched prices (for drift audits) is a ring of int64 keys, for the same
 *    reason: book.py keeps the decoded diffs themselves.
 *  - Digits are accumulated in a uint64 with an overflow check: a price mantissa past INT64_MAX
 *    is Malformed, never wrapped; quantities are never bounded (past int64: kept as text).
 *  - An undo log per side owns what it displaced, so a rejected diff is restored exactly and a
 *    committed one releases it. Rolling back never allocates (it only restores levels removed in
 *    the same attempt), so it cannot fail half-way.
 *
 * SBE levels (design §4.7) are applied as int64 (mantissa, exponent) pairs (apply_ints): a level
 * whose price slot is NULL is formatted from its key, the way quantities are, when first read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define DEFAULT_EXPONENT 8
#define DEFAULT_JOURNAL 512
#define MAX_EXPONENT 18
#define R_MALFORMED (-1)
#define R_RESCALE (-2)
#define R_ERROR (-3) /* a Python exception is set (out of memory) */

static const int64_t POW10[MAX_EXPONENT + 1] = {
    1LL,
    10LL,
    100LL,
    1000LL,
    10000LL,
    100000LL,
    1000000LL,
    10000000LL,
    100000000LL,
    1000000000LL,
    10000000000LL,
    100000000000LL,
    1000000000000LL,
    10000000000000LL,
    100000000000000LL,
    1000000000000000LL,
    10000000000000000LL,
    100000000000000000LL,
    1000000000000000000LL,
};

static PyObject *Decimal = NULL; /* decimal.Decimal, for levels() and touched_since() */

/* A quantity: its string (owned), or NULL and then mantissa m with d decimals. */
typedef struct {
    PyObject *text;
    int64_t m;
    int d;
} Qty;

typedef struct {
    PyObject *price; /* owned: as first received; NULL: formatted from the key when first read */
    int pd;          /* with price NULL: the decimals to spell it with (apply_ints' levels) */
    Qty qty;
} Slot;

enum { U_INSERTED, U_QTY, U_REMOVED };

/* What one change displaced, for rollback. U_INSERTED: remove the level at key. U_QTY: the
 * level's previous quantity (the price did not change). U_REMOVED: the removed level's price
 * (owned) and quantity. */
typedef struct {
    int64_t key;
    int kind;
    PyObject *price;
    int pd;
    Qty qty;
} Undo;

/* Keys touched by the diff being applied, bids then asks: journaled if it is applied. */
typedef struct {
    int64_t *keys;
    Py_ssize_t n, cap;
} Scratch;

typedef struct {
    PyObject_HEAD
    int64_t *keys;
    Slot *lv;
    Py_ssize_t n, cap;
    Undo *undo;
    Py_ssize_t nundo, undocap;
    int64_t sign; /* 1 for bids, -1 for asks */
    int exp;      /* the book's price exponent (both sides always agree) */
    int need;     /* decimals asked for when side_apply returned R_RESCALE */
} SideObject;

typedef struct {
    int64_t id;      /* the diff's u */
    int exp;         /* the exponent its keys are at */
    Py_ssize_t bids; /* how many keys of each side, bids first */
    Py_ssize_t asks;
} Entry;

typedef struct {
    PyObject_HEAD
    SideObject *bids;
    SideObject *asks;
    int base;
    Scratch scratch;
    /* journal: a ring of entries (capacity jcap) and a ring of their keys (capacity kcap) */
    Entry *jent;
    Py_ssize_t jcap, jhead, jlen;
    int64_t *jkeys;
    Py_ssize_t kcap, khead, klen;
} BookObject;

static PyTypeObject SideType;
static PyTypeObject BookType;

/* -- numbers ------------------------------------------------------------------------------- */

/* Syntax of a number string, as book.valid_qty: ASCII digits and at most one dot, at least one
 * digit. Sets *zero when every digit is 0. Returns 0 when it is not a number. */
static int
number_syntax(PyObject *s, int *zero)
{
    if (!PyUnicode_Check(s)) {
        return 0;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0) {
        PyErr_Clear();
        return 0;
    }
#endif
    if (!PyUnicode_IS_ASCII(s)) {
        return 0;
    }
    const unsigned char *p = PyUnicode_1BYTE_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int dot = 0, digits = 0, nonzero = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c >= '0' && c <= '9') {
            digits = 1;
            nonzero |= c != '0';
        }
        else if (c == '.' && !dot) {
            dot = 1;
        }
        else {
            return 0;
        }
    }
    *zero = !nonzero;
    return digits;
}

enum { Q_BAD, Q_ZERO, Q_INT, Q_TEXT };

/* A quantity string, validated as book.valid_qty: Q_BAD, Q_ZERO, Q_INT (canonical: *m and *d
 * give it back exactly through format_qty) or Q_TEXT (valid, to be kept as the string). */
static int
parse_qty(PyObject *s, int64_t *m_out, int *d_out)
{
    if (!PyUnicode_Check(s)) {
        return Q_BAD;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0) {
        PyErr_Clear();
        return Q_BAD;
    }
#endif
    if (!PyUnicode_IS_ASCII(s)) {
        return Q_BAD;
    }
    const unsigned char *p = PyUnicode_1BYTE_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), dot = -1, digits = 0;
    uint64_t m = 0;
    int nonzero = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned d = (unsigned)p[i] - '0';
        if (d > 9) {
            if (p[i] == '.' && dot < 0) {
                dot = i;
                continue;
            }
            return Q_BAD;
        }
        nonzero |= d != 0;
        if (++digits <= 19) {
            m = m * 10 + d; /* 19 digits always fit a uint64 */
        }
    }
    if (!digits) {
        return Q_BAD;
    }
    if (!nonzero) {
        return Q_ZERO;
    }
    Py_ssize_t decimals = dot < 0 ? 0 : n - dot - 1;
    int canonical = digits <= 19 && m <= (uint64_t)INT64_MAX && decimals <= MAX_EXPONENT &&
                    dot != 0 && dot != n - 1 && (p[0] != '0' || n == 1 || dot == 1);
    if (!canonical) {
        return Q_TEXT;
    }
    *m_out = (int64_t)m;
    *d_out = (int)decimals;
    return Q_INT;
}

/* An ASCII str of the bytes p..end (the digit buffers below are built backwards). */
static PyObject *
ascii_str(const char *p, const char *end)
{
    Py_ssize_t len = end - p;
    PyObject *s = PyUnicode_New(len, 127);
    if (s != NULL) {
        memcpy(PyUnicode_1BYTE_DATA(s), p, (size_t)len);
    }
    return s;
}

/* The spelling of v x 10^-places with places + tail decimals (tail zeros appended). */
static PyObject *
spell(uint64_t v, int places, int tail)
{
    char buf[320]; /* tail <= 128, places <= 128, digits <= 20 */
    char *end = buf + sizeof(buf), *p = end;
    for (int k = 0; k < tail; k++) {
        *--p = '0';
    }
    for (int k = 0; k < places; k++) {
        *--p = (char)('0' + v % 10);
        v /= 10;
    }
    if (places + tail) {
        *--p = '.';
    }
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return ascii_str(p, end);
}

/* decimal_string(v, e) of book.py for v >= 0, -128 <= e <= 127: exactly max(0, -e) decimals. */
static PyObject *
spell_decimal(uint64_t v, int e)
{
    if (e <= 0 || v == 0) {
        return spell(v, e < 0 ? -e : 0, 0);
    }
    char buf[160]; /* digits then e zeros: an integer */
    char *end = buf + sizeof(buf), *p = end;
    for (int k = 0; k < e; k++) {
        *--p = '0';
    }
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return ascii_str(p, end);
}

/* Significant decimals of a syntactically valid number ("1.2500" has 2). */
static Py_ssize_t
significant_decimals(PyObject *s)
{
    const unsigned char *p = PyUnicode_1BYTE_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), pos = -1, sig = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] == '.') {
            pos = i;
        }
        else if (pos >= 0 && p[i] != '0') {
            sig = i - pos;
        }
    }
    return sig;
}

/* A price string's mantissa at exp, as book._mantissa after book.valid_price, in one pass: > 0,
 * or R_MALFORMED (not a number, zero, or past INT64_MAX), or R_RESCALE (valid, with more
 * significant decimals than exp but at most MAX_EXPONENT; *need says how many). */
static int64_t
parse_price(PyObject *s, int exp, int *need)
{
    if (!PyUnicode_Check(s)) {
        return R_MALFORMED;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0) {
        PyErr_Clear();
        return R_MALFORMED;
    }
#endif
    if (!PyUnicode_IS_ASCII(s)) {
        return R_MALFORMED;
    }
    const unsigned char *p = PyUnicode_1BYTE_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    uint64_t m = 0;
    int overflow = 0, digits = 0;
    Py_ssize_t frac = -1, sig = 0; /* fraction digits seen (-1: no dot yet) */
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned d = (unsigned)p[i] - '0';
        if (d > 9) {
            if (p[i] == '.' && frac < 0) {
                frac = 0;
                continue;
            }
            return R_MALFORMED;
        }
        digits = 1;
        if (frac >= 0) {
            frac++;
            if (d) {
                sig = frac;
            }
            if (frac > exp) {
                continue; /* must be a zero: checked below through sig */
            }
        }
        if (m > (UINT64_MAX - d) / 10) {
            overflow = 1;
        }
        else {
            m = m * 10 + d;
        }
    }
    if (!digits) {
        return R_MALFORMED;
    }
    if (sig > exp) {
        if (sig <= MAX_EXPONENT) {
            *need = (int)sig;
            return R_RESCALE;
        }
        return R_MALFORMED;
    }
    if (frac < exp) {
        uint64_t f = (uint64_t)POW10[exp - (frac < 0 ? 0 : frac)];
        if (m > UINT64_MAX / f) {
            overflow = 1;
        }
        else {
            m *= f;
        }
    }
    if (overflow || m == 0 || m > (uint64_t)INT64_MAX) {
        return R_MALFORMED;
    }
    return (int64_t)m;
}

/* -- one side -------------------------------------------------------------------------------- */

/* The first index whose key is >= key: branch-free halving (no mispredictions), over the best
 * 64 levels first when the key is among them, as half of all changes are. */
static inline Py_ssize_t
lower_bound(const int64_t *keys, Py_ssize_t n, int64_t key)
{
    if (n == 0) {
        return 0;
    }
    const int64_t *base = keys;
    Py_ssize_t len = n;
    if (n > 64 && keys[n - 64] < key) {
        base = keys + (n - 64);
        len = 64;
    }
    while (len > 1) {
        Py_ssize_t half = len >> 1;
        base = base[half] < key ? base + half : base;
        len -= half;
    }
    return (base - keys) + (*base < key);
}

static int
reserve_levels(SideObject *s, Py_ssize_t want)
{
    if (want <= s->cap) {
        return 0;
    }
    Py_ssize_t cap = s->cap ? s->cap : 64;
    while (cap < want) {
        cap *= 2;
    }
    int64_t *keys = PyMem_Realloc(s->keys, (size_t)cap * sizeof(int64_t));
    if (keys == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->keys = keys;
    Slot *lv = PyMem_Realloc(s->lv, (size_t)cap * sizeof(Slot));
    if (lv == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->lv = lv;
    s->cap = cap;
    return 0;
}

static int
push_undo(SideObject *s, int64_t key, int kind, PyObject *price, int pd, const Qty *qty)
{
    if (s->nundo == s->undocap) {
        Py_ssize_t cap = s->undocap ? s->undocap * 2 : 64;
        Undo *u = PyMem_Realloc(s->undo, (size_t)cap * sizeof(Undo));
        if (u == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        s->undo = u;
        s->undocap = cap;
    }
    Undo *e = &s->undo[s->nundo++];
    e->key = key;
    e->kind = kind;
    e->price = price;
    e->pd = pd;
    if (qty != NULL) {
        e->qty = *qty;
    }
    else {
        e->qty.text = NULL;
    }
    return 0;
}

static int
scratch_push(Scratch *t, int64_t key)
{
    if (t->n == t->cap) {
        Py_ssize_t cap = t->cap ? t->cap * 2 : 256;
        int64_t *keys = PyMem_Realloc(t->keys, (size_t)cap * sizeof(int64_t));
        if (keys == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        t->keys = keys;
        t->cap = cap;
    }
    t->keys[t->n++] = key;
    return 0;
}

static void
side_clear(SideObject *s)
{
    for (Py_ssize_t i = 0; i < s->n; i++) {
        Py_XDECREF(s->lv[i].price);
        Py_XDECREF(s->lv[i].qty.text);
    }
    s->n = 0;
}

/* Forget the undo log of a committed diff, releasing what it displaced. */
static void
side_commit(SideObject *s)
{
    for (Py_ssize_t i = 0; i < s->nundo; i++) {
        Py_XDECREF(s->undo[i].price);
        Py_XDECREF(s->undo[i].qty.text);
    }
    s->nundo = 0;
}

/* Open a slot at i (capacity reserved by the caller); the slot takes the references. */
static inline void
open_at(SideObject *s, Py_ssize_t i, int64_t key, PyObject *price, int pd, const Qty *qty)
{
    Py_ssize_t tail = s->n - i;
    memmove(&s->keys[i + 1], &s->keys[i], (size_t)tail * sizeof(int64_t));
    memmove(&s->lv[i + 1], &s->lv[i], (size_t)tail * sizeof(Slot));
    s->keys[i] = key;
    s->lv[i].price = price;
    s->lv[i].pd = pd;
    s->lv[i].qty = *qty;
    s->n++;
}

/* Close the slot at i; the caller took or released its references. */
static inline void
close_at(SideObject *s, Py_ssize_t i)
{
    Py_ssize_t tail = s->n - i - 1;
    memmove(&s->keys[i], &s->keys[i + 1], (size_t)tail * sizeof(int64_t));
    memmove(&s->lv[i], &s->lv[i + 1], (size_t)tail * sizeof(Slot));
    s->n--;
}

/* Undo the log newest first; never allocates (only levels removed in this attempt come back). */
static void
side_rollback(SideObject *s)
{
    for (Py_ssize_t j = s->nundo - 1; j >= 0; j--) {
        Undo *e = &s->undo[j];
        Py_ssize_t i = lower_bound(s->keys, s->n, e->key);
        int found = i < s->n && s->keys[i] == e->key;
        if (e->kind == U_INSERTED) {
            if (found) {
                Py_XDECREF(s->lv[i].price);
                Py_XDECREF(s->lv[i].qty.text);
                close_at(s, i);
            }
        }
        else if (e->kind == U_QTY && found) {
            Py_XDECREF(s->lv[i].qty.text);
            s->lv[i].qty = e->qty;
        }
        else if (e->kind == U_REMOVED && !found) {
            open_at(s, i, e->key, e->price, e->pd, &e->qty);
        }
        else { /* cannot happen: the log replays this attempt backwards */
            Py_XDECREF(e->price);
            Py_XDECREF(e->qty.text);
        }
    }
    s->nundo = 0;
}

/* Apply one validated level at key: a new quantity, a removal, or an insert (the only use of
 * price and pd). price and qty->text are borrowed: what the book keeps, it takes a reference
 * to. Returns 0, or R_ERROR (out of memory) with nothing changed by this level. */
static inline int
side_set(SideObject *s, int64_t key, int kind, PyObject *price, int pd, const Qty *qty,
         Py_ssize_t *inserted)
{
    Py_ssize_t i = lower_bound(s->keys, s->n, key);
    if (i < s->n && s->keys[i] == key) {
        Slot *l = &s->lv[i];
        if (kind == Q_ZERO) { /* the log takes the level's references */
            if (push_undo(s, key, U_REMOVED, l->price, l->pd, &l->qty) < 0) {
                return R_ERROR;
            }
            close_at(s, i);
        }
        else {
            if (push_undo(s, key, U_QTY, NULL, 0, &l->qty) < 0) {
                return R_ERROR;
            }
            Py_XINCREF(qty->text);
            l->qty = *qty;
        }
    }
    else if (kind != Q_ZERO) {
        if (reserve_levels(s, s->n + 1) < 0 || push_undo(s, key, U_INSERTED, NULL, 0, NULL) < 0) {
            return R_ERROR;
        }
        Py_XINCREF(price);
        Py_XINCREF(qty->text);
        open_at(s, i, key, price, pd, qty);
        (*inserted)++;
    }
    return 0;
}

/* Validate and apply the levels of one side, as BookSide.apply: the number of levels inserted,
 * or R_MALFORMED / R_RESCALE / R_ERROR with what was applied recorded in the undo log. Every
 * level's key goes to the scratch journal. */
static Py_ssize_t
side_apply(SideObject *s, PyObject *levels, Scratch *touched)
{
    PyObject *seq = PySequence_Fast(levels, "levels must be iterable");
    if (seq == NULL) {
        if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
            return R_ERROR;
        }
        PyErr_Clear();
        return R_MALFORMED;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq), inserted = 0, result = R_MALFORMED;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t j = 0; j < count; j++) {
        PyObject *level = items[j];
        if (!PyList_CheckExact(level) || PyList_GET_SIZE(level) != 2) {
            goto done;
        }
        PyObject *price = PyList_GET_ITEM(level, 0);
        PyObject *text = PyList_GET_ITEM(level, 1);
        Qty qty = {NULL, 0, 0};
        int kind = parse_qty(text, &qty.m, &qty.d);
        if (kind == Q_BAD) {
            goto done;
        }
        int64_t m = parse_price(price, s->exp, &s->need);
        if (m < 0) {
            result = m;
            goto done;
        }
        int64_t key = s->sign * m;
        if (scratch_push(touched, key) < 0) {
            result = R_ERROR;
            goto done;
        }
        if (kind == Q_TEXT) {
            qty.text = text; /* a reference is taken below, when stored */
        }
        if (side_set(s, key, kind, price, 0, &qty, &inserted) < 0) {
            result = R_ERROR;
            goto done;
        }
    }
    result = inserted;
done:
    Py_DECREF(seq);
    return result;
}

/* -- integer levels (apply_ints) ---------------------------------------------------------------
 *
 * A level (price mantissa p, quantity mantissa q) at exponents (pe, qe) is applied exactly as
 * the strings decimal_string(p, pe), decimal_string(q, qe) would be by side_apply: the same
 * keys, RESCALE and Malformed verdicts, with integer arithmetic instead of parsing. */

/* The mantissa at the book's exponent exp of p x 10^pe, as parse_price of its decimal string:
 * > 0, R_MALFORMED (not positive, past INT64_MAX) or R_RESCALE (*need: its decimals). */
static int64_t
int_price(int64_t p, int pe, int exp, int *need)
{
    if (p <= 0) {
        return R_MALFORMED;
    }
    int shift = pe + exp;
    if (shift >= 0) {
        if (shift > MAX_EXPONENT || p > INT64_MAX / POW10[shift]) {
            return R_MALFORMED;
        }
        return p * POW10[shift];
    }
    int zeros = 0; /* trailing zeros of p: a decimal spelling's insignificant decimals */
    while (zeros < -shift && p % 10 == 0) {
        p /= 10;
        zeros++;
    }
    if (zeros == -shift) {
        return p;
    }
    while (p % 10 == 0) {
        p /= 10;
        zeros++;
    }
    int sig = -pe - zeros; /* significant decimals, more than exp */
    if (sig <= MAX_EXPONENT) {
        *need = sig;
        return R_RESCALE;
    }
    return R_MALFORMED;
}

/* A little-endian int64, whatever the host's byte order (one load on little-endian hosts). */
static inline int64_t
load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) {
        v = (v << 8) | p[k];
    }
    return (int64_t)v;
}

/* One integer level, as one string level of side_apply: validate, convert, apply. */
static inline int
int_level(SideObject *s, int64_t p, int64_t q, int pe, int qe, int pd, Scratch *touched,
          Py_ssize_t *inserted)
{
    Qty qty = {NULL, 0, 0};
    int kind;
    if (q < 0) {
        return R_MALFORMED;
    }
    if (q == 0) {
        kind = Q_ZERO;
    }
    else if (qe <= 0 && qe >= -MAX_EXPONENT) {
        qty.m = q;
        qty.d = -qe;
        kind = Q_INT;
    }
    else if (qe > 0 && qe <= MAX_EXPONENT && q <= INT64_MAX / POW10[qe]) {
        qty.m = q * POW10[qe];
        kind = Q_INT;
    }
    else {
        kind = Q_TEXT; /* more than 18 decimals, or past int64: kept as its spelling */
    }
    int64_t m = int_price(p, pe, s->exp, &s->need);
    if (m < 0) {
        return (int)m;
    }
    int64_t key = s->sign * m;
    if (scratch_push(touched, key) < 0) {
        return R_ERROR;
    }
    if (kind == Q_TEXT) {
        qty.text = spell_decimal((uint64_t)q, qe);
        if (qty.text == NULL) {
            return R_ERROR;
        }
    }
    int r = side_set(s, key, kind, NULL, pd, &qty, inserted);
    Py_XDECREF(qty.text); /* side_set took its own reference if it kept it */
    return r;
}

/* Levels packed as in an SBE group (little-endian int64 price, int64 qty; 16 bytes each), for
 * bytes, bytearray and memoryview (book.py accepts the same three). */
static int
is_packed(PyObject *levels)
{
    return PyBytes_CheckExact(levels) || PyByteArray_CheckExact(levels) ||
           PyMemoryView_Check(levels);
}

/* Validate and apply integer levels of one side (packed, or a sequence of (price, qty) int
 * pairs), as side_apply does the equivalent strings. */
static Py_ssize_t
side_apply_ints(SideObject *s, PyObject *levels, int pe, int qe, Scratch *touched)
{
    int pd = pe < 0 ? -pe : 0;
    Py_ssize_t inserted = 0, result = R_MALFORMED;
    if (is_packed(levels)) {
        Py_buffer view;
        if (PyObject_GetBuffer(levels, &view, PyBUF_SIMPLE) < 0) {
            if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
                return R_ERROR;
            }
            PyErr_Clear();
            return R_MALFORMED; /* not contiguous */
        }
        if (view.len % 16 == 0) {
            const unsigned char *p = view.buf;
            result = inserted;
            for (Py_ssize_t at = 0; at < view.len; at += 16) {
                int r = int_level(s, load_le64(p + at), load_le64(p + at + 8), pe, qe, pd,
                                  touched, &inserted);
                if (r < 0) {
                    result = r;
                    break;
                }
            }
            if (result >= 0) {
                result = inserted;
            }
        }
        PyBuffer_Release(&view);
        return result;
    }
    PyObject *seq = PySequence_Fast(levels, "levels must be iterable");
    if (seq == NULL) {
        if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
            return R_ERROR;
        }
        PyErr_Clear();
        return R_MALFORMED;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t j = 0; j < count; j++) {
        PyObject *level = items[j], *price, *qty;
        if (PyTuple_CheckExact(level) && PyTuple_GET_SIZE(level) == 2) {
            price = PyTuple_GET_ITEM(level, 0);
            qty = PyTuple_GET_ITEM(level, 1);
        }
        else if (PyList_CheckExact(level) && PyList_GET_SIZE(level) == 2) {
            price = PyList_GET_ITEM(level, 0);
            qty = PyList_GET_ITEM(level, 1);
        }
        else {
            goto done;
        }
        if (!PyLong_CheckExact(price) || !PyLong_CheckExact(qty)) {
            goto done;
        }
        int over_p, over_q;
        long long p = PyLong_AsLongLongAndOverflow(price, &over_p);
        long long q = PyLong_AsLongLongAndOverflow(qty, &over_q);
        if (over_p || over_q) {
            goto done; /* SBE mantissas are int64 */
        }
        int r = int_level(s, p, q, pe, qe, pd, touched, &inserted);
        if (r < 0) {
            result = r;
            goto done;
        }
    }
    result = inserted;
done:
    Py_DECREF(seq);
    return result;
}

static int64_t
side_largest(const SideObject *s)
{
    if (s->n == 0) {
        return 0;
    }
    return s->sign > 0 ? s->keys[s->n - 1] : -s->keys[0];
}

static void
side_scale(SideObject *s, int exp)
{
    if (exp > s->exp) {
        int64_t f = POW10[exp - s->exp];
        for (Py_ssize_t i = 0; i < s->n; i++) {
            s->keys[i] *= f;
        }
    }
    else if (exp < s->exp) {
        int64_t f = POW10[s->exp - exp];
        for (Py_ssize_t i = 0; i < s->n; i++) {
            s->keys[i] /= f; /* exact: these keys were multiplied by f */
        }
    }
    s->exp = exp;
}

static SideObject *
side_new(int64_t sign, int exp)
{
    SideObject *s = PyObject_New(SideObject, &SideType);
    if (s == NULL) {
        return NULL;
    }
    s->keys = NULL;
    s->lv = NULL;
    s->n = s->cap = 0;
    s->undo = NULL;
    s->nundo = s->undocap = 0;
    s->sign = sign;
    s->exp = exp;
    s->need = 0;
    return s;
}

static void
Side_dealloc(SideObject *s)
{
    side_commit(s);
    side_clear(s);
    PyMem_Free(s->keys);
    PyMem_Free(s->lv);
    PyMem_Free(s->undo);
    PyObject_Free(s);
}

static Py_ssize_t
Side_len(SideObject *s)
{
    return s->n;
}

/* The price string of level i: as received, or (a level from apply_ints) spelled from its key
 * with its pd decimals, as decimal_string(p, pe) spells it, and then kept like quantities. The
 * key's trailing exp - pd digits are zeros when pd < exp (the price had no more decimals). */
static PyObject *
price_object(SideObject *s, Py_ssize_t i)
{
    Slot *l = &s->lv[i];
    if (l->price == NULL) {
        int64_t m = s->sign * s->keys[i];
        int exp = s->exp, pd = l->pd;
        l->price = pd <= exp ? spell((uint64_t)(m / POW10[exp - pd]), pd, 0)
                             : spell((uint64_t)m, exp, pd - exp);
        if (l->price == NULL) {
            return NULL;
        }
    }
    return Py_NewRef(l->price);
}

/* The quantity string of a level, formatted once and then kept: readers of the top of the book
 * (top(10) after every message) mostly read levels that did not change. */
static PyObject *
slot_qty(Slot *l)
{
    if (l->qty.text == NULL) {
        l->qty.text = spell((uint64_t)l->qty.m, l->qty.d, 0); /* canonical: "0.00123000" */
        if (l->qty.text == NULL) {
            return NULL;
        }
    }
    return Py_NewRef(l->qty.text);
}

static PyObject *
level_tuple(SideObject *s, Py_ssize_t i)
{
    PyObject *price = price_object(s, i);
    PyObject *qty = price ? slot_qty(&s->lv[i]) : NULL;
    PyObject *t = qty ? PyTuple_New(2) : NULL;
    if (t == NULL) {
        Py_XDECREF(price);
        Py_XDECREF(qty);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, price);
    PyTuple_SET_ITEM(t, 1, qty);
    return t;
}

static PyObject *
Side_best(SideObject *s, PyObject *Py_UNUSED(ignored))
{
    if (s->n == 0) {
        Py_RETURN_NONE;
    }
    return level_tuple(s, s->n - 1);
}

static PyObject *
Side_top(SideObject *s, PyObject *arg)
{
    Py_ssize_t want = PyNumber_AsSsize_t(arg, NULL); /* clipped */
    if (want == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (want < 0) {
        want = 0;
    }
    if (want > s->n) {
        want = s->n;
    }
    PyObject *out = PyList_New(want);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t k = 0; k < want; k++) {
        PyObject *t = level_tuple(s, s->n - 1 - k);
        if (t == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k, t);
    }
    return out;
}

static PyObject *
Side_get(SideObject *s, PyObject *price)
{
    int need;
    if (!PyUnicode_CheckExact(price)) {
        Py_RETURN_NONE;
    }
    int64_t m = parse_price(price, s->exp, &need);
    if (m < 0) {
        Py_RETURN_NONE;
    }
    int64_t key = s->sign * m;
    Py_ssize_t i = lower_bound(s->keys, s->n, key);
    if (i < s->n && s->keys[i] == key) {
        return slot_qty(&s->lv[i]);
    }
    Py_RETURN_NONE;
}

static PyObject *
Side_levels(SideObject *s, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyList_New(s->n);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t k = 0; k < s->n; k++) {
        Py_ssize_t i = s->n - 1 - k;
        PyObject *price = price_object(s, i);
        PyObject *value = price ? PyObject_CallOneArg(Decimal, price) : NULL;
        PyObject *qty = value ? slot_qty(&s->lv[i]) : NULL;
        PyObject *t = qty ? PyTuple_Pack(3, value, price, qty) : NULL;
        Py_XDECREF(price);
        Py_XDECREF(value);
        Py_XDECREF(qty);
        if (t == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k, t);
    }
    PyObject *it = PyObject_GetIter(out);
    Py_DECREF(out);
    return it;
}

static PyObject *
Side_descending(SideObject *s, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(s->sign > 0);
}

static PyMethodDef Side_methods[] = {
    {"best", (PyCFunction)Side_best, METH_NOARGS, "The best level, or None."},
    {"top", (PyCFunction)Side_top, METH_O, "The best n levels, best first."},
    {"get", (PyCFunction)Side_get, METH_O, "The quantity held at a price (any spelling)."},
    {"levels", (PyCFunction)Side_levels, METH_NOARGS,
     "Every level best first, as (exact value, price string, quantity string)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Side_getset[] = {
    {"descending", (getter)Side_descending, NULL, "True for bids (highest price first).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Side_as_sequence = {
    .sq_length = (lenfunc)Side_len,
};

static PyTypeObject SideType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "streamer.sansio._book.BookSide",
    .tp_basicsize = sizeof(SideObject),
    .tp_dealloc = (destructor)Side_dealloc,
    .tp_as_sequence = &Side_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Price levels of one side of a C book (created by Book only).",
    .tp_methods = Side_methods,
    .tp_getset = Side_getset,
};

/* -- the journal ----------------------------------------------------------------------------- */

static void
journal_clear(BookObject *b)
{
    b->jhead = b->jlen = 0;
    b->khead = b->klen = 0;
}

/* Journal the scratch keys as one diff (nb of them bids) under id, forgetting the oldest diff
 * when full. */
static int
journal_push(BookObject *b, int64_t id, Py_ssize_t nb)
{
    Scratch *t = &b->scratch;
    if (b->jlen == b->jcap) {
        Entry *old = &b->jent[b->jhead];
        b->khead = (b->khead + old->bids + old->asks) % (b->kcap ? b->kcap : 1);
        b->klen -= old->bids + old->asks;
        b->jhead = (b->jhead + 1) % b->jcap;
        b->jlen--;
    }
    if (b->klen + t->n > b->kcap) { /* grow, straightening the ring */
        Py_ssize_t cap = b->kcap ? b->kcap : 1024;
        while (cap < b->klen + t->n) {
            cap *= 2;
        }
        int64_t *keys = PyMem_Malloc((size_t)cap * sizeof(int64_t));
        if (keys == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t k = 0; k < b->klen; k++) {
            keys[k] = b->jkeys[(b->khead + k) % b->kcap];
        }
        PyMem_Free(b->jkeys);
        b->jkeys = keys;
        b->kcap = cap;
        b->khead = 0;
    }
    Py_ssize_t at = (b->khead + b->klen) % (b->kcap ? b->kcap : 1);
    for (Py_ssize_t k = 0; k < t->n; k++) {
        b->jkeys[(at + k) % b->kcap] = t->keys[k];
    }
    b->klen += t->n;
    Entry *e = &b->jent[(b->jhead + b->jlen) % b->jcap];
    e->id = id;
    e->exp = b->bids->exp;
    e->bids = nb;
    e->asks = t->n - nb;
    b->jlen++;
    return 0;
}

static PyObject *
key_decimal(int64_t key, int exp)
{
    int64_t m = key < 0 ? -key : key;
    PyObject *text = PyUnicode_FromFormat("%lldE-%d", (long long)m, exp);
    if (text == NULL) {
        return NULL;
    }
    PyObject *value = PyObject_CallOneArg(Decimal, text);
    Py_DECREF(text);
    return value;
}

/* -- the book -------------------------------------------------------------------------------- */

static int
book_rescale(BookObject *b, int exp)
{
    int current = b->bids->exp;
    if (exp > current) {
        int64_t biggest = side_largest(b->bids);
        int64_t a = side_largest(b->asks);
        if (a > biggest) {
            biggest = a;
        }
        if (biggest > INT64_MAX / POW10[exp - current]) {
            return 0;
        }
    }
    side_scale(b->bids, exp);
    side_scale(b->asks, exp);
    return 1;
}

static void
book_clear(BookObject *b)
{
    side_clear(b->bids);
    side_clear(b->asks);
    b->bids->exp = b->asks->exp = b->base;
    journal_clear(b);
}

static PyObject *
Book_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    /* The sides exist from the start, so no method ever sees a half-built book. */
    BookObject *b = (BookObject *)type->tp_alloc(type, 0);
    if (b == NULL) {
        return NULL;
    }
    b->base = DEFAULT_EXPONENT;
    b->bids = side_new(1, DEFAULT_EXPONENT);
    b->asks = b->bids ? side_new(-1, DEFAULT_EXPONENT) : NULL;
    if (b->asks == NULL) {
        Py_DECREF(b);
        return NULL;
    }
    b->jent = PyMem_Calloc(DEFAULT_JOURNAL, sizeof(Entry));
    if (b->jent == NULL) {
        Py_DECREF(b);
        return PyErr_NoMemory();
    }
    b->jcap = DEFAULT_JOURNAL;
    return (PyObject *)b;
}

static int
Book_init(BookObject *b, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"exponent", "journal_size", NULL};
    int exp = DEFAULT_EXPONENT;
    Py_ssize_t journal = DEFAULT_JOURNAL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|in:Book", names, &exp, &journal)) {
        return -1;
    }
    if (exp < 0 || exp > MAX_EXPONENT) {
        PyErr_Format(PyExc_ValueError, "exponent must be within 0..%d", MAX_EXPONENT);
        return -1;
    }
    if (journal < 1) {
        PyErr_SetString(PyExc_ValueError, "journal_size must be positive");
        return -1;
    }
    if (journal != b->jcap) {
        Entry *jent = PyMem_Calloc((size_t)journal, sizeof(Entry));
        if (jent == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        PyMem_Free(b->jent);
        b->jent = jent;
        b->jcap = journal;
    }
    b->base = exp;
    book_clear(b);
    return 0;
}

static void
Book_dealloc(BookObject *b)
{
    Py_XDECREF(b->bids);
    Py_XDECREF(b->asks);
    PyMem_Free(b->scratch.keys);
    PyMem_Free(b->jent);
    PyMem_Free(b->jkeys);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

/* An update id argument: int64, clipped (wire.py admits int64 ids only; never wrap). */
static int
parse_id(PyObject *arg, long long *id)
{
    int overflow;
    *id = PyLong_AsLongLongAndOverflow(arg, &overflow);
    if (*id == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow) {
        *id = overflow > 0 ? INT64_MAX : INT64_MIN;
    }
    return 0;
}

/* Both sides of a diff, all or nothing, as Book.apply_diff: string levels, or integer levels at
 * exponents (pe, qe) when ints is set. Rescales and retries while a price asks for more decimals;
 * a rejected diff leaves the book (exponent included) as it was. */
static PyObject *
book_apply(BookObject *b, PyObject *bid_levels, PyObject *ask_levels, long long id, int ints,
           int pe, int qe)
{
    SideObject *bids = b->bids, *asks = b->asks;
    int start = bids->exp;
    for (;;) {
        b->scratch.n = 0;
        Py_ssize_t nb = ints ? side_apply_ints(bids, bid_levels, pe, qe, &b->scratch)
                             : side_apply(bids, bid_levels, &b->scratch);
        Py_ssize_t bid_keys = b->scratch.n;
        Py_ssize_t na = R_MALFORMED;
        if (nb >= 0) {
            na = ints ? side_apply_ints(asks, ask_levels, pe, qe, &b->scratch)
                      : side_apply(asks, ask_levels, &b->scratch);
        }
        if (na >= 0) {
            side_commit(bids);
            side_commit(asks);
            if (journal_push(b, id, bid_keys) < 0) {
                return NULL; /* the diff stays applied; only the audit trail is short */
            }
            return PyLong_FromSsize_t(nb + na);
        }
        side_rollback(asks);
        side_rollback(bids);
        if (nb == R_ERROR || na == R_ERROR) {
            book_rescale(b, start);
            return NULL;
        }
        int need = nb == R_RESCALE ? bids->need : asks->need;
        if ((nb == R_RESCALE || na == R_RESCALE) && book_rescale(b, need)) {
            continue; /* the whole diff again, at the new exponent */
        }
        book_rescale(b, start);
        return PyLong_FromLong(-1);
    }
}

static PyObject *
Book_apply_diff(BookObject *b, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "apply_diff(bids, asks, update_id=0)");
        return NULL;
    }
    long long id = 0;
    if (nargs == 3 && parse_id(args[2], &id) < 0) {
        return NULL;
    }
    return book_apply(b, args[0], args[1], id, 0, 0, 0);
}

/* An exponent argument: an int within int8 (SBE's type), else the diff is Malformed. */
static int
parse_exponent(PyObject *arg, int *out)
{
    if (!PyLong_CheckExact(arg)) {
        return 0;
    }
    int overflow;
    long e = PyLong_AsLongAndOverflow(arg, &overflow);
    if (overflow || e < -128 || e > 127) {
        return 0;
    }
    *out = (int)e;
    return 1;
}

static PyObject *
Book_apply_ints(BookObject *b, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 && nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "apply_ints(bids, asks, price_exponent, qty_exponent, update_id=0)");
        return NULL;
    }
    long long id = 0;
    if (nargs == 5 && parse_id(args[4], &id) < 0) {
        return NULL;
    }
    int pe, qe;
    if (!parse_exponent(args[2], &pe) || !parse_exponent(args[3], &qe)) {
        return PyLong_FromLong(-1);
    }
    return book_apply(b, args[0], args[1], id, 1, pe, qe);
}

static PyObject *
Book_touched_since(BookObject *b, PyObject *arg)
{
    long long after;
    if (parse_id(arg, &after) < 0) {
        return NULL;
    }
    if (b->jlen == b->jcap && b->jent[b->jhead].id > after) {
        Py_RETURN_NONE;
    }
    PyObject *bids = PyList_New(0), *asks = PyList_New(0);
    if (bids == NULL || asks == NULL) {
        goto fail;
    }
    Py_ssize_t end = b->klen; /* keys of the newest entry end here (offset from khead) */
    for (Py_ssize_t j = b->jlen - 1; j >= 0; j--) {
        const Entry *e = &b->jent[(b->jhead + j) % b->jcap];
        Py_ssize_t first = end - e->bids - e->asks;
        if (e->id <= after) {
            break;
        }
        for (Py_ssize_t k = first; k < end; k++) {
            PyObject *value = key_decimal(b->jkeys[(b->khead + k) % b->kcap], e->exp);
            if (value == NULL || PyList_Append(k < first + e->bids ? bids : asks, value) < 0) {
                Py_XDECREF(value);
                goto fail;
            }
            Py_DECREF(value);
        }
        end = first;
    }
    return Py_BuildValue("(NN)", bids, asks);
fail:
    Py_XDECREF(bids);
    Py_XDECREF(asks);
    return NULL;
}

typedef struct {
    int64_t key;
    Py_ssize_t seq;
    PyObject *price; /* borrowed from the snapshot */
    PyObject *qty;
} LoadEntry;

static int
entry_cmp(const void *x, const void *y)
{
    const LoadEntry *a = x, *b = y;
    if (a->key != b->key) {
        return a->key < b->key ? -1 : 1;
    }
    return a->seq < b->seq ? -1 : (a->seq > b->seq);
}

/* The non-zero levels of a snapshot side (borrowed), as book._snapshot_side. Returns the count,
 * -1 when a level is not valid, -2 with an exception set. *maxdec: their most decimals. */
static Py_ssize_t
snapshot_side(PyObject *seq, LoadEntry **out, Py_ssize_t *maxdec)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), k = 0;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    LoadEntry *e = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(LoadEntry));
    if (e == NULL) {
        PyErr_NoMemory();
        return -2;
    }
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *level = items[j], *price, *qty;
        if (PyList_CheckExact(level) && PyList_GET_SIZE(level) == 2) {
            price = PyList_GET_ITEM(level, 0);
            qty = PyList_GET_ITEM(level, 1);
        }
        else if (PyTuple_CheckExact(level) && PyTuple_GET_SIZE(level) == 2) {
            price = PyTuple_GET_ITEM(level, 0);
            qty = PyTuple_GET_ITEM(level, 1);
        }
        else {
            PyMem_Free(e);
            return -1;
        }
        int zero, price_zero;
        if (!PyUnicode_CheckExact(price) || !PyUnicode_CheckExact(qty) ||
            !number_syntax(qty, &zero) || !number_syntax(price, &price_zero) || price_zero) {
            PyMem_Free(e);
            return -1;
        }
        if (!zero) {
            Py_ssize_t dec = significant_decimals(price);
            if (dec > *maxdec) {
                *maxdec = dec;
            }
            e[k].seq = k;
            e[k].price = price;
            e[k].qty = qty;
            k++;
        }
    }
    *out = e;
    return k;
}

/* Fill a side from entries parsed at exp; 0 when a price does not fit, -1 on an exception. */
static int
side_fill(SideObject *s, LoadEntry *e, Py_ssize_t n, int exp)
{
    int need;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t m = parse_price(e[i].price, exp, &need);
        if (m < 0) {
            return 0;
        }
        e[i].key = s->sign * m;
    }
    qsort(e, (size_t)n, sizeof(LoadEntry), entry_cmp);
    if (reserve_levels(s, n) < 0) {
        return -1;
    }
    s->exp = exp;
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + 1 < n && e[i + 1].key == e[i].key) {
            continue; /* the later of two levels with one value wins */
        }
        Qty qty = {NULL, 0, 0};
        if (parse_qty(e[i].qty, &qty.m, &qty.d) != Q_INT) {
            qty.text = Py_NewRef(e[i].qty);
        }
        s->keys[k] = e[i].key;
        s->lv[k].price = Py_NewRef(e[i].price);
        s->lv[k].pd = 0;
        s->lv[k].qty = qty;
        k++;
    }
    s->n = k;
    return 1;
}

static PyObject *
Book_load(BookObject *b, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "load(bids, asks)");
        return NULL;
    }
    book_clear(b);
    PyObject *result = NULL;
    PyObject *bseq = NULL, *aseq = NULL;
    LoadEntry *be = NULL, *ae = NULL;
    Py_ssize_t maxdec = b->base, nb = -1, na = -1;
    bseq = PySequence_Fast(args[0], "bids must be iterable");
    aseq = bseq ? PySequence_Fast(args[1], "asks must be iterable") : NULL;
    if (aseq == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            result = Py_NewRef(Py_False);
        }
        goto done;
    }
    nb = snapshot_side(bseq, &be, &maxdec);
    na = nb >= 0 ? snapshot_side(aseq, &ae, &maxdec) : -1;
    if (nb == -2 || na == -2) {
        goto done;
    }
    if (nb < 0 || na < 0 || maxdec > MAX_EXPONENT) {
        result = Py_NewRef(Py_False);
        goto done;
    }
    int ok = side_fill(b->bids, be, nb, (int)maxdec);
    if (ok == 1) {
        ok = side_fill(b->asks, ae, na, (int)maxdec);
    }
    if (ok < 0) {
        book_clear(b);
        goto done;
    }
    if (ok == 0) {
        book_clear(b);
    }
    result = Py_NewRef(ok ? Py_True : Py_False);
done:
    PyMem_Free(be);
    PyMem_Free(ae);
    Py_XDECREF(bseq);
    Py_XDECREF(aseq);
    return result;
}

static PyObject *
Book_clear(BookObject *b, PyObject *Py_UNUSED(ignored))
{
    book_clear(b);
    Py_RETURN_NONE;
}

static PyObject *
Book_is_crossed(BookObject *b, PyObject *Py_UNUSED(ignored))
{
    const SideObject *bids = b->bids, *asks = b->asks;
    if (bids->n == 0 || asks->n == 0) {
        Py_RETURN_FALSE;
    }
    return PyBool_FromLong(bids->keys[bids->n - 1] >= -asks->keys[asks->n - 1]);
}

static PyObject *
Book_get_bids(BookObject *b, void *Py_UNUSED(closure))
{
    return Py_NewRef((PyObject *)b->bids);
}

static PyObject *
Book_get_asks(BookObject *b, void *Py_UNUSED(closure))
{
    return Py_NewRef((PyObject *)b->asks);
}

static PyObject *
Book_get_exponent(BookObject *b, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(b->bids->exp);
}

static PyMethodDef Book_methods[] = {
    {"apply_diff", (PyCFunction)(void (*)(void))Book_apply_diff, METH_FASTCALL,
     "Apply both sides of a diff: the number of levels inserted, or -1 (book unchanged)."},
    {"apply_ints", (PyCFunction)(void (*)(void))Book_apply_ints, METH_FASTCALL,
     "apply_diff of integer levels (mantissas at two exponents), without strings."},
    {"touched_since", (PyCFunction)Book_touched_since, METH_O,
     "The prices of the journaled diffs with an id above update_id, or None."},
    {"load", (PyCFunction)(void (*)(void))Book_load, METH_FASTCALL,
     "Replace both sides with a snapshot; False (and an empty book) if it cannot be held."},
    {"clear", (PyCFunction)Book_clear, METH_NOARGS, "Empty both sides and the journal."},
    {"is_crossed", (PyCFunction)Book_is_crossed, METH_NOARGS,
     "True when the best bid is at or above the best ask."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Book_getset[] = {
    {"bids", (getter)Book_get_bids, NULL, "The bid side.", NULL},
    {"asks", (getter)Book_get_asks, NULL, "The ask side.", NULL},
    {"exponent", (getter)Book_get_exponent, NULL, "Decimals of every price mantissa.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject BookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "streamer.sansio._book.Book",
    .tp_basicsize = sizeof(BookObject),
    .tp_dealloc = (destructor)Book_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Bids and asks of one symbol (the C twin of streamer.sansio.book.Book).",
    .tp_methods = Book_methods,
    .tp_getset = Book_getset,
    .tp_init = (initproc)Book_init,
    .tp_new = Book_new,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "streamer.sansio._book",
    .m_doc = "The C twin of streamer.sansio.book.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__book(void)
{
    if (PyType_Ready(&SideType) < 0 || PyType_Ready(&BookType) < 0) {
        return NULL;
    }
    PyObject *decimal = PyImport_ImportModule("decimal");
    if (decimal == NULL) {
        return NULL;
    }
    Decimal = PyObject_GetAttrString(decimal, "Decimal");
    Py_DECREF(decimal);
    if (Decimal == NULL) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Book", (PyObject *)&BookType) < 0 ||
        PyModule_AddObjectRef(m, "BookSide", (PyObject *)&SideType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
