/* The C twin of streamer/sansio/book.py: the same book, the same verdicts, faster.
 *
 * book.py is the reference: every rule here mirrors one there, and a differential fuzz in the
 * tests (tests/unit/test_book_differential.py) requires identical books and identical verdicts.
 * Read book.py first; this file only adds what C needs:
 *
 *  - A side is one array of levels sorted so the best level is last (key = price mantissa for
 *    bids, minus the mantissa for asks), found by binary search over int64 keys. Each level owns
 *    a reference to its price string (as first received) and its quantity string (as last
 *    received): top() hands those very objects back, so output is what Binance sent.
 *  - Every price is parsed (in C that costs less than a dict lookup), digits accumulated in a
 *    uint64 with an overflow check: a mantissa past INT64_MAX is Malformed, never wrapped.
 *    Quantities are validated (ASCII digits, at most one dot) and kept as strings, never bounded.
 *  - An undo log per side owns the references it displaced, so a rejected diff is restored
 *    exactly and a committed one releases them. Rolling back never allocates (it only restores
 *    levels removed in the same attempt), so it cannot fail half-way.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define DEFAULT_EXPONENT 8
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

static PyObject *Decimal = NULL; /* decimal.Decimal, for levels() */

/* The strings of one level, both owned: the price as first received, the quantity as last. */
typedef struct {
    PyObject *price;
    PyObject *qty;
} Pair;

enum { U_INSERTED, U_QTY, U_REMOVED };

/* What one change displaced, for rollback. U_INSERTED: remove the level at key. U_QTY: the
 * level's previous quantity (owned; the price did not change, so it is not touched: it is cold
 * memory). U_REMOVED: the removed level's price and quantity (owned). */
typedef struct {
    int64_t key;
    int kind;
    PyObject *price;
    PyObject *qty;
} Undo;

/* Keys apart from the strings: the binary search reads 8 bytes per step, and most searches end
 * among the best levels, which are last. */
typedef struct {
    PyObject_HEAD
    int64_t *keys;
    Pair *lv;
    Py_ssize_t n, cap;
    Undo *undo;
    Py_ssize_t nundo, undocap;
    int64_t sign; /* 1 for bids, -1 for asks */
    int exp;      /* the book's price exponent (both sides always agree) */
    int need;     /* decimals asked for when side_apply returned R_RESCALE */
} SideObject;

typedef struct {
    PyObject_HEAD
    SideObject *bids;
    SideObject *asks;
    int base;
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

/* Significant decimals of a syntactically valid number ("1.2500" has 2), capped at INT_MAX. */
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
 * significant decimals than exp but at most MAX_EXPONENT; *need says how many). Digits go into
 * a uint64 with an overflow check: a huge mantissa is refused, never wrapped. */
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
    Pair *lv = PyMem_Realloc(s->lv, (size_t)cap * sizeof(Pair));
    if (lv == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->lv = lv;
    s->cap = cap;
    return 0;
}

static int
push_undo(SideObject *s, int64_t key, int kind, PyObject *price, PyObject *qty)
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
    e->qty = qty;
    return 0;
}

static void
side_clear(SideObject *s)
{
    for (Py_ssize_t i = 0; i < s->n; i++) {
        Py_DECREF(s->lv[i].price);
        Py_DECREF(s->lv[i].qty);
    }
    s->n = 0;
}

/* Forget the undo log of a committed diff, releasing what it displaced. */
static void
side_commit(SideObject *s)
{
    for (Py_ssize_t i = 0; i < s->nundo; i++) {
        Py_XDECREF(s->undo[i].price);
        Py_XDECREF(s->undo[i].qty);
    }
    s->nundo = 0;
}

/* Open a slot at i (capacity reserved by the caller). */
static inline void
open_at(SideObject *s, Py_ssize_t i, int64_t key, PyObject *price, PyObject *qty)
{
    Py_ssize_t tail = s->n - i;
    memmove(&s->keys[i + 1], &s->keys[i], (size_t)tail * sizeof(int64_t));
    memmove(&s->lv[i + 1], &s->lv[i], (size_t)tail * sizeof(Pair));
    s->keys[i] = key;
    s->lv[i].price = price;
    s->lv[i].qty = qty;
    s->n++;
}

/* Close the slot at i; the caller took or released its references. */
static inline void
close_at(SideObject *s, Py_ssize_t i)
{
    Py_ssize_t tail = s->n - i - 1;
    memmove(&s->keys[i], &s->keys[i + 1], (size_t)tail * sizeof(int64_t));
    memmove(&s->lv[i], &s->lv[i + 1], (size_t)tail * sizeof(Pair));
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
                Py_DECREF(s->lv[i].price);
                Py_DECREF(s->lv[i].qty);
                close_at(s, i);
            }
        }
        else if (e->kind == U_QTY && found) {
            Py_SETREF(s->lv[i].qty, e->qty);
        }
        else if (e->kind == U_REMOVED && !found) {
            open_at(s, i, e->key, e->price, e->qty);
        }
        else { /* cannot happen: the log replays this attempt backwards */
            Py_XDECREF(e->price);
            Py_XDECREF(e->qty);
        }
    }
    s->nundo = 0;
}

/* Validate and apply the levels of one side, as BookSide.apply: the number of levels inserted,
 * or R_MALFORMED / R_RESCALE / R_ERROR with what was applied recorded in the undo log. */
static Py_ssize_t
side_apply(SideObject *s, PyObject *levels)
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
        PyObject *qty = PyList_GET_ITEM(level, 1);
        int zero;
        if (!number_syntax(qty, &zero)) {
            goto done;
        }
        int64_t m = parse_price(price, s->exp, &s->need);
        if (m < 0) {
            result = m;
            goto done;
        }
        int64_t key = s->sign * m;
        Py_ssize_t i = lower_bound(s->keys, s->n, key);
        if (i < s->n && s->keys[i] == key) {
            Pair *l = &s->lv[i];
            if (zero) { /* the log takes the level's references */
                if (push_undo(s, key, U_REMOVED, l->price, l->qty) < 0) {
                    result = R_ERROR;
                    goto done;
                }
                close_at(s, i);
            }
            else {
                if (push_undo(s, key, U_QTY, NULL, l->qty) < 0) {
                    result = R_ERROR;
                    goto done;
                }
                Py_INCREF(qty);
                l->qty = qty;
            }
        }
        else if (!zero) {
            if (reserve_levels(s, s->n + 1) < 0 || push_undo(s, key, U_INSERTED, NULL, NULL) < 0) {
                result = R_ERROR;
                goto done;
            }
            Py_INCREF(price);
            Py_INCREF(qty);
            open_at(s, i, key, price, qty);
            inserted++;
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

static PyObject *
level_tuple(const Pair *l)
{
    return PyTuple_Pack(2, l->price, l->qty);
}

static PyObject *
Side_best(SideObject *s, PyObject *Py_UNUSED(ignored))
{
    if (s->n == 0) {
        Py_RETURN_NONE;
    }
    return level_tuple(&s->lv[s->n - 1]);
}

static PyObject *
Side_top(SideObject *s, PyObject *arg)
{
    Py_ssize_t want = PyNumber_AsSsize_t(arg, NULL) /* clipped */;
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
        PyObject *t = level_tuple(&s->lv[s->n - 1 - k]);
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
        return Py_NewRef(s->lv[i].qty);
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
        const Pair *l = &s->lv[s->n - 1 - k];
        PyObject *value = PyObject_CallOneArg(Decimal, l->price);
        PyObject *t = value ? PyTuple_Pack(3, value, l->price, l->qty) : NULL;
        Py_XDECREF(value);
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
    return (PyObject *)b;
}

static int
Book_init(BookObject *b, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"exponent", NULL};
    int exp = DEFAULT_EXPONENT;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i:Book", names, &exp)) {
        return -1;
    }
    if (exp < 0 || exp > MAX_EXPONENT) {
        PyErr_Format(PyExc_ValueError, "exponent must be within 0..%d", MAX_EXPONENT);
        return -1;
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
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static PyObject *
Book_apply_diff(BookObject *b, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_diff(bids, asks)");
        return NULL;
    }
    SideObject *bids = b->bids, *asks = b->asks;
    int start = bids->exp;
    for (;;) {
        Py_ssize_t nb = side_apply(bids, args[0]);
        Py_ssize_t na = nb >= 0 ? side_apply(asks, args[1]) : R_MALFORMED;
        if (na >= 0) {
            side_commit(bids);
            side_commit(asks);
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

typedef struct {
    int64_t key;
    Py_ssize_t seq;
    PyObject *price; /* borrowed from the snapshot */
    PyObject *qty;
} Entry;

static int
entry_cmp(const void *x, const void *y)
{
    const Entry *a = x, *b = y;
    if (a->key != b->key) {
        return a->key < b->key ? -1 : 1;
    }
    return a->seq < b->seq ? -1 : (a->seq > b->seq);
}

/* The non-zero levels of a snapshot side (borrowed), as book._snapshot_side. Returns the count,
 * -1 when a level is not valid, -2 with an exception set. *maxdec: their most decimals. */
static Py_ssize_t
snapshot_side(PyObject *seq, Entry **out, Py_ssize_t *maxdec)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), k = 0;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Entry *e = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Entry));
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
side_fill(SideObject *s, Entry *e, Py_ssize_t n, int exp)
{
    int need;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t m = parse_price(e[i].price, exp, &need);
        if (m < 0) {
            return 0;
        }
        e[i].key = s->sign * m;
    }
    qsort(e, (size_t)n, sizeof(Entry), entry_cmp);
    if (reserve_levels(s, n) < 0) {
        return -1;
    }
    s->exp = exp;
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + 1 < n && e[i + 1].key == e[i].key) {
            continue; /* the later of two levels with one value wins */
        }
        s->keys[k] = e[i].key;
        s->lv[k].price = Py_NewRef(e[i].price);
        s->lv[k].qty = Py_NewRef(e[i].qty);
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
    Entry *be = NULL, *ae = NULL;
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
    {"load", (PyCFunction)(void (*)(void))Book_load, METH_FASTCALL,
     "Replace both sides with a snapshot; False (and an empty book) if it cannot be held."},
    {"clear", (PyCFunction)Book_clear, METH_NOARGS, "Empty both sides."},
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
