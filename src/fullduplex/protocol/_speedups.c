/* fullduplex.protocol._speedups: the compiled receive path of fullduplex.protocol.
 *
 * Six functions, each with a pure-Python twin that defines its contract:
 *
 *     apply_mask(data, mask) -> bytes                          _apply_mask_python (_compiled.py)
 *     unmask_payload(buffer, key_offset, start, end) -> bytes  _unmask_payload_python (_compiled.py)
 *     parse_messages(buffer, position, mask_bit, max_payload,
 *                    events, text_type, binary_type) -> int    FrameParser.next_messages
 *                                                              (frames.py)
 *     deliver_messages(callback, owner, open_state, mask_bit,
 *                      max_payload, buffer, nbytes) -> int     _deliver_messages_python
 *                                                              (frames.py)
 *     frame_message(message) -> bytes                          _serialize_message_python
 *                                                              (frames.py)
 *     parse_request_head(buffer, end, max_headers) -> tuple    _parse_head_python
 *                                                              (http_server.py)
 *
 * apply_mask returns `data` XORed with the repeating 4-byte `mask` (RFC 6455 §5.3). `data` is
 * any bytes-like object (bytes, bytearray, memoryview, also non-contiguous); `mask` is a
 * bytes-like object of exactly 4 bytes. Masking and unmasking are the same operation.
 *
 * unmask_payload returns `buffer[start:end]` unmasked with the key at
 * `buffer[key_offset:key_offset + 4]`, the payload starting right after the key; it reads the
 * received bytes in place instead of copying the slice first.
 *
 * parse_messages turns the plain one-frame messages at `position` into TextReceived and
 * BinaryReceived events, or into the bare str and bytes; see its docstring below.
 * deliver_messages takes the same frames and hands each message to a callback at once: the
 * read path of a connection whose messages go to a callback, one call per read.
 *
 * frame_message is the send side's one call per message: the header and the payload of an
 * unmasked frame (a server's) in one bytes object, a str written as its UTF-8 without an
 * intermediate bytes object.
 *
 * Two types as well. MessageDeliverer is deliver_messages with its first five arguments bound
 * and checked once (the twin of functools.partial(deliver_messages, ...), see
 * frames.bind_deliverer). PlainReads is the compiled twin of io/asyncio's _PlainReads
 * (plumbing.py, which defines its contract): a transport's protocol whose data_received runs
 * the callback API's read (the connection's deliverer, then one write of the replies) with no
 * Python call of its own. It knows no event loop and no socket, only the connection's
 * attributes and methods; it is here because this is the package's one compiled module.
 *
 * The masking loop XORs 8 bytes at a time with a 64-bit word holding the mask twice. Words are
 * moved with memcpy, which compilers turn into plain (unaligned) loads and stores, so any
 * alignment of `data` is fine; the last 0-7 bytes are done one at a time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>

static void
xor_mask(const unsigned char *src, unsigned char *dst, Py_ssize_t length,
         const unsigned char mask[4])
{
    unsigned char mask_bytes[8];
    uint64_t mask_word;
    Py_ssize_t i = 0;

    /* In memory order the word is mask[0..3] mask[0..3], so it lines up with the payload
       at every offset that is a multiple of 8, whatever the machine's byte order. */
    memcpy(mask_bytes, mask, 4);
    memcpy(mask_bytes + 4, mask, 4);
    memcpy(&mask_word, mask_bytes, 8);

    for (; i + 32 <= length; i += 32) {
        uint64_t w0, w1, w2, w3;
        memcpy(&w0, src + i, 8);
        memcpy(&w1, src + i + 8, 8);
        memcpy(&w2, src + i + 16, 8);
        memcpy(&w3, src + i + 24, 8);
        w0 ^= mask_word;
        w1 ^= mask_word;
        w2 ^= mask_word;
        w3 ^= mask_word;
        memcpy(dst + i, &w0, 8);
        memcpy(dst + i + 8, &w1, 8);
        memcpy(dst + i + 16, &w2, 8);
        memcpy(dst + i + 24, &w3, 8);
    }
    for (; i + 8 <= length; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= mask_word;
        memcpy(dst + i, &w, 8);
    }
    for (; i < length; i++) {
        dst[i] = src[i] ^ mask[i & 3];
    }
}

/* Fill `view` with a contiguous buffer of `obj`. A non-contiguous object (a strided
   memoryview) is copied to bytes first; `*copy` then holds that copy, else NULL. */
static int
get_contiguous_buffer(PyObject *obj, Py_buffer *view, PyObject **copy)
{
    *copy = NULL;
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) == 0) {
        return 0;
    }
    if (!PyErr_ExceptionMatches(PyExc_BufferError) || !PyObject_CheckBuffer(obj)) {
        return -1;
    }
    PyErr_Clear();
    *copy = PyBytes_FromObject(obj);
    if (*copy == NULL) {
        return -1;
    }
    if (PyObject_GetBuffer(*copy, view, PyBUF_SIMPLE) != 0) {
        Py_CLEAR(*copy);
        return -1;
    }
    return 0;
}

/* Positional or keyword arguments `data` and `mask`, parsed by hand: vectorcall keeps the
   per-frame call overhead low, and this function runs once for every masked frame. */
static int
parse_arguments(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                PyObject **data, PyObject **mask)
{
    static const char *const names[2] = {"data", "mask"};
    PyObject *values[2] = {NULL, NULL};
    Py_ssize_t i, nkwargs = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);

    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError,
                     "apply_mask() takes 2 positional arguments but %zd were given", nargs);
        return -1;
    }
    for (i = 0; i < nargs; i++) {
        values[i] = args[i];
    }
    for (i = 0; i < nkwargs; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        int index;
        if (PyUnicode_CompareWithASCIIString(name, "data") == 0) {
            index = 0;
        }
        else if (PyUnicode_CompareWithASCIIString(name, "mask") == 0) {
            index = 1;
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "apply_mask() got an unexpected keyword argument '%U'", name);
            return -1;
        }
        if (values[index] != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "apply_mask() got multiple values for argument '%s'", names[index]);
            return -1;
        }
        values[index] = args[nargs + i];
    }
    for (i = 0; i < 2; i++) {
        if (values[i] == NULL) {
            PyErr_Format(PyExc_TypeError,
                         "apply_mask() missing required argument '%s'", names[i]);
            return -1;
        }
    }
    *data = values[0];
    *mask = values[1];
    return 0;
}

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *data_obj, *mask_obj, *data_copy = NULL, *mask_copy = NULL, *result = NULL;
    Py_buffer data, mask;

    (void)module;
    if (parse_arguments(args, nargs, kwnames, &data_obj, &mask_obj) != 0) {
        return NULL;
    }
    if (get_contiguous_buffer(data_obj, &data, &data_copy) != 0) {
        return NULL;
    }
    if (get_contiguous_buffer(mask_obj, &mask, &mask_copy) != 0) {
        goto release_data;
    }
    if (mask.len != 4) {
        PyErr_Format(PyExc_ValueError, "mask must be 4 bytes long, got %zd", mask.len);
        goto release_mask;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result != NULL) {
        xor_mask((const unsigned char *)data.buf, (unsigned char *)PyBytes_AS_STRING(result),
                 data.len, (const unsigned char *)mask.buf);
    }
release_mask:
    PyBuffer_Release(&mask);
    Py_XDECREF(mask_copy);
release_data:
    PyBuffer_Release(&data);
    Py_XDECREF(data_copy);
    return result;
}

/* A non-negative index argument, as a Py_ssize_t; -1 with an exception set otherwise. */
static Py_ssize_t
index_argument(PyObject *obj, const char *name)
{
    Py_ssize_t value = PyLong_AsSsize_t(obj);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (value < 0) {
        PyErr_Format(PyExc_ValueError, "%s must not be negative", name);
        return -1;
    }
    return value;
}

static PyObject *
unmask_payload(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t key_offset, start, end, turn, i;
    unsigned char key[4];
    Py_buffer buffer;
    PyObject *result = NULL;

    (void)module;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError,
                     "unmask_payload() takes 4 positional arguments but %zd were given", nargs);
        return NULL;
    }
    if ((key_offset = index_argument(args[1], "key_offset")) < 0
        || (start = index_argument(args[2], "start")) < 0
        || (end = index_argument(args[3], "end")) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &buffer, PyBUF_SIMPLE) != 0) {
        return NULL;
    }
    if (key_offset > PY_SSIZE_T_MAX - 4 || key_offset + 4 > start || start > end
        || end > buffer.len) {
        PyErr_Format(PyExc_ValueError,
                     "need key_offset + 4 <= start <= end <= len(buffer), got %zd, %zd, %zd, %zd",
                     key_offset, start, end, buffer.len);
        goto done;
    }
    /* The payload starts at key_offset + 4; a later start begins mid-way through the key. */
    turn = (start - key_offset - 4) & 3;
    for (i = 0; i < 4; i++) {
        key[i] = ((const unsigned char *)buffer.buf)[key_offset + ((turn + i) & 3)];
    }
    result = PyBytes_FromStringAndSize(NULL, end - start);
    if (result != NULL) {
        xor_mask((const unsigned char *)buffer.buf + start,
                 (unsigned char *)PyBytes_AS_STRING(result), end - start, key);
    }
done:
    PyBuffer_Release(&buffer);
    return result;
}

PyDoc_STRVAR(unmask_payload_doc,
"unmask_payload(buffer, key_offset, start, end, /)\n"
"--\n"
"\n"
"Return ``buffer[start:end]`` unmasked, without copying the slice first.\n"
"\n"
"The masking key is ``buffer[key_offset:key_offset + 4]`` and the payload it masks starts\n"
"at ``key_offset + 4``, as in a frame (RFC 6455 section 5.2); ``start`` may lie further in.\n"
"\n"
"Raises:\n"
"    TypeError: ``buffer`` is not bytes-like or an offset is not an integer.\n"
"    ValueError: the offsets are not ``key_offset + 4 <= start <= end <= len(buffer)``.\n");

/* A tuple subclass with one field (TextReceived, BinaryReceived), checked once per call:
   parse_messages fills the instances itself, as tuple.__new__ would. None: no event, the
   bare message. */
static int
check_event_type(PyObject *obj, const char *name)
{
    if (obj == Py_None) {
        return 0;
    }
    if (!PyType_Check(obj) || !PyType_IsSubtype((PyTypeObject *)obj, &PyTuple_Type)) {
        PyErr_Format(PyExc_TypeError, "%s must be a tuple subclass", name);
        return -1;
    }
    return 0;
}

/* Room for the unmasked UTF-8 of a text message before it is decoded. Most messages fit on
   the stack; a larger one gets a heap block that later frames of the same call reuse. */
typedef struct {
    unsigned char small[1024];
    unsigned char *large;
    Py_ssize_t large_size;
} scratch_t;

static unsigned char *
scratch_reserve(scratch_t *scratch, Py_ssize_t size)
{
    if (size <= (Py_ssize_t)sizeof(scratch->small)) {
        return scratch->small;
    }
    if (size > scratch->large_size) {
        PyMem_Free(scratch->large);
        scratch->large = PyMem_Malloc((size_t)size);
        if (scratch->large == NULL) {
            scratch->large_size = 0;
            PyErr_NoMemory();
            return NULL;
        }
        scratch->large_size = size;
    }
    return scratch->large;
}

/* Build the event `type(item)`: a one-field tuple subclass, filled as tuple.__new__ does;
   `item` itself when `type` is NULL. Steals the reference to `item`, also on failure. */
static PyObject *
new_event(PyTypeObject *type, PyObject *item)
{
    PyObject *event;
    if (type == NULL) {
        return item;
    }
    event = type->tp_alloc(type, 1);
    if (event == NULL) {
        Py_DECREF(item);
        return NULL;
    }
    PyTuple_SET_ITEM(event, 0, item);
    return event;
}

/* The whole message in the plain frame at `frame` (`available` bytes from there on): FIN,
   RSV1-3 clear, TEXT or BINARY, masked as `mask_bit` says (RFC 6455 §5.1), complete, at most
   `max_payload` bytes (-1: none fits), text valid UTF-8. Returns 1 and sets `*item` (a new str
   or bytes) and `*frame_size`; 0 for anything else, which FrameParser.next_frame and the
   connection handle; -1 with an exception set. */
static int
take_plain_frame(const unsigned char *frame, Py_ssize_t available, long mask_bit,
                 long long max_payload, scratch_t *scratch, PyObject **item,
                 Py_ssize_t *frame_size)
{
    Py_ssize_t header = 2;
    unsigned char first = frame[0], second = frame[1];
    uint64_t length = second & 0x7F;
    const unsigned char *payload;

    /* 0x81 and 0x82 are FIN, RSV1-3 clear, TEXT or BINARY: a whole plain message. */
    if ((first != 0x81 && first != 0x82) || (long)(second & 0x80) != mask_bit) {
        return 0;
    }
    if (length == 126) {
        if (available < 4) {
            return 0;
        }
        length = ((uint64_t)frame[2] << 8) | frame[3];
        header = 4;
    }
    else if (length == 127) {
        int i;
        if (available < 10) {
            return 0;
        }
        length = 0;
        for (i = 2; i < 10; i++) {
            length = (length << 8) | frame[i];
        }
        header = 10;
    }
    if (mask_bit) {
        header += 4;
    }
    /* A length with its top bit set exceeds any max_payload (at most LLONG_MAX), so the
       slow path reports it too. */
    if (max_payload < 0 || length > (uint64_t)max_payload) {
        return 0;
    }
    if (available < header || length > (uint64_t)(available - header)) {
        return 0;
    }
    payload = frame + header;
    if (first == 0x82) {
        *item = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)length);
        if (*item == NULL) {
            return -1;
        }
        if (mask_bit) {
            xor_mask(payload, (unsigned char *)PyBytes_AS_STRING(*item), (Py_ssize_t)length,
                     payload - 4);
        }
        else {
            memcpy(PyBytes_AS_STRING(*item), payload, (size_t)length);
        }
    }
    else {
        const unsigned char *text = payload;
        if (mask_bit) {
            unsigned char *unmasked = scratch_reserve(scratch, (Py_ssize_t)length);
            if (unmasked == NULL) {
                return -1;
            }
            xor_mask(payload, unmasked, (Py_ssize_t)length, payload - 4);
            text = unmasked;
        }
        *item = PyUnicode_DecodeUTF8((const char *)text, (Py_ssize_t)length, NULL);
        if (*item == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                return -1;
            }
            /* Left for the slow path, which fails the connection with 1007. */
            PyErr_Clear();
            return 0;
        }
    }
    *frame_size = header + (Py_ssize_t)length;
    return 1;
}

/* The mask_bit and max_payload arguments of parse_messages and deliver_messages. */
static int
frame_limits(PyObject *mask_bit_obj, PyObject *max_payload_obj, long *mask_bit,
             long long *max_payload)
{
    int overflow;

    *mask_bit = PyLong_AsLong(mask_bit_obj);
    if (*mask_bit == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (*mask_bit != 0 && *mask_bit != 0x80) {
        PyErr_SetString(PyExc_ValueError, "mask_bit must be 0 or 0x80");
        return -1;
    }
    *max_payload = PyLong_AsLongLongAndOverflow(max_payload_obj, &overflow);
    if (*max_payload == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow > 0) {
        *max_payload = LLONG_MAX;  /* beyond any length a frame can carry: no limit */
    }
    else if (overflow < 0 || *max_payload < 0) {
        *max_payload = -1;  /* not even an empty message fits */
    }
    return 0;
}

static PyObject *
parse_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t position, size;
    long mask_bit;
    long long max_payload;
    PyObject *events;
    PyTypeObject *text_type, *binary_type;
    const unsigned char *data;
    Py_buffer buffer;
    scratch_t scratch;
    PyObject *result = NULL;

    (void)module;
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError,
                     "parse_messages() takes 7 positional arguments but %zd were given", nargs);
        return NULL;
    }
    if ((position = index_argument(args[1], "position")) < 0) {
        return NULL;
    }
    if (frame_limits(args[2], args[3], &mask_bit, &max_payload) != 0) {
        return NULL;
    }
    events = args[4];
    if (!PyList_Check(events)) {
        PyErr_SetString(PyExc_TypeError, "events must be a list");
        return NULL;
    }
    if (check_event_type(args[5], "text_type") != 0
        || check_event_type(args[6], "binary_type") != 0) {
        return NULL;
    }
    text_type = args[5] == Py_None ? NULL : (PyTypeObject *)args[5];
    binary_type = args[6] == Py_None ? NULL : (PyTypeObject *)args[6];

    /* The export pins the buffer (a bytearray, or the memoryview of one that a read filled):
       nothing can resize it while events are built (an allocation may run the garbage
       collector, and with it arbitrary finalizers). */
    if (PyObject_GetBuffer(args[0], &buffer, PyBUF_SIMPLE) != 0) {
        return NULL;
    }
    data = (const unsigned char *)buffer.buf;
    size = buffer.len;
    if (position > size) {
        PyErr_Format(PyExc_ValueError, "position %zd is past the end of the buffer (%zd bytes)",
                     position, size);
        PyBuffer_Release(&buffer);
        return NULL;
    }
    scratch.large = NULL;
    scratch.large_size = 0;

    while (size - position >= 2) {
        PyObject *item, *event;
        Py_ssize_t frame_size;
        int taken = take_plain_frame(data + position, size - position, mask_bit, max_payload,
                                     &scratch, &item, &frame_size);
        if (taken < 0) {
            goto done;
        }
        if (taken == 0) {
            break;
        }
        event = new_event(PyUnicode_CheckExact(item) ? text_type : binary_type, item);
        if (event == NULL) {
            goto done;
        }
        if (PyList_Append(events, event) != 0) {
            Py_DECREF(event);
            goto done;
        }
        Py_DECREF(event);
        position += frame_size;
    }
    result = PyLong_FromSsize_t(position);
done:
    PyMem_Free(scratch.large);
    PyBuffer_Release(&buffer);
    return result;
}

PyDoc_STRVAR(parse_messages_doc,
"parse_messages(buffer, position, mask_bit, max_payload, events, text_type, binary_type, /)\n"
"--\n"
"\n"
"Parse the whole messages in one plain frame at ``buffer[position:]`` into events.\n"
"``buffer`` is any bytes-like object.\n"
"\n"
"Takes every consecutive complete frame that has FIN set, RSV1-3 clear, opcode TEXT or\n"
"BINARY, the mask bit ``mask_bit`` (0 or 0x80) and at most ``max_payload`` bytes of payload,\n"
"text being valid UTF-8. Appends ``text_type(str)`` or ``binary_type(bytes)`` to ``events``\n"
"for each and stops at the first frame that is incomplete or anything else.\n"
"\n"
"Args:\n"
"    text_type, binary_type: tuple subclasses with one field (TextReceived, BinaryReceived),\n"
"        or None to append the bare str or bytes.\n"
"\n"
"Returns:\n"
"    The position after the last frame taken; ``position`` when none was.\n"
"\n"
"Raises:\n"
"    TypeError, ValueError: an argument has the wrong type or value.\n"
"    MemoryError: then events for the frames before may already be appended.\n");

/* Where the slot (a `__slots__` member) `name` of `type` lives in its instances, or -1 when the
   name is something else there (then it is looked up by name). Reading and writing a slot
   at its offset is what its member descriptor does, without looking the name up through
   the type's MRO and checking the instance's type against the descriptor's every time. */
static Py_ssize_t
slot_offset(PyTypeObject *type, PyObject *name, int writable)
{
    PyObject *descriptor = _PyType_Lookup(type, name);
    if (descriptor != NULL && Py_IS_TYPE(descriptor, &PyMemberDescr_Type)) {
        PyMemberDef *member = ((PyMemberDescrObject *)descriptor)->d_member;
        if (member->type == T_OBJECT_EX && !(writable && (member->flags & READONLY))) {
            return member->offset;
        }
    }
    return -1;
}

/* The attribute `name` of `object` at `offset` (see slot_offset): a new reference, or NULL
   with an exception set. */
static PyObject *
get_slot(PyObject *object, Py_ssize_t offset, PyObject *name)
{
    PyObject *value;
    if (offset < 0) {
        return PyObject_GetAttr(object, name);
    }
    value = *(PyObject **)((char *)object + offset);
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%U'",
                     Py_TYPE(object)->tp_name, name);
        return NULL;
    }
    return Py_NewRef(value);
}

static int
set_slot(PyObject *object, Py_ssize_t offset, PyObject *name, PyObject *value)
{
    if (offset < 0) {
        return PyObject_SetAttr(object, name, value);
    }
    Py_XSETREF(*(PyObject **)((char *)object + offset), Py_NewRef(value));
    return 0;
}

/* "state", interned once (deliver_messages, MessageDeliverer). */
static PyObject *state_name = NULL;

/* What deliver_messages binds before the buffer: the callback, the owner whose `state` is
   checked (and where that slot lives, see slot_offset), and the frame limits. */
typedef struct {
    PyObject *callback, *owner, *open_state;
    Py_ssize_t state_offset;
    long mask_bit;
    long long max_payload;
} delivery_t;

/* 0, or -1 with an exception set: the first five arguments of deliver_messages. */
static int
delivery_arguments(PyObject *const *args, delivery_t *delivery)
{
    if (state_name == NULL && (state_name = PyUnicode_InternFromString("state")) == NULL) {
        return -1;
    }
    delivery->callback = args[0];
    delivery->owner = args[1];
    delivery->open_state = args[2];
    delivery->state_offset = slot_offset(Py_TYPE(args[1]), state_name, 0);
    return frame_limits(args[3], args[4], &delivery->mask_bit, &delivery->max_payload);
}

/* deliver_messages over `nbytes` bytes at `data`, which the caller keeps from changing. */
static PyObject *
deliver_from(const delivery_t *delivery, const unsigned char *data, Py_ssize_t nbytes)
{
    Py_ssize_t position = 0;
    scratch_t scratch;
    PyObject *result = NULL;

    scratch.large = NULL;
    scratch.large_size = 0;
    while (nbytes - position >= 2) {
        PyObject *item, *state, *returned;
        Py_ssize_t frame_size;
        int is_open, taken;

        /* Checked before every message: the previous callback may have closed or failed the
           connection, and then the slow path decides what the rest of the bytes mean. */
        state = get_slot(delivery->owner, delivery->state_offset, state_name);
        if (state == NULL) {
            goto done;
        }
        is_open = state == delivery->open_state;
        Py_DECREF(state);
        if (!is_open) {
            break;
        }
        taken = take_plain_frame(data + position, nbytes - position, delivery->mask_bit,
                                 delivery->max_payload, &scratch, &item, &frame_size);
        if (taken < 0) {
            goto done;
        }
        if (taken == 0) {
            break;
        }
        position += frame_size;
        returned = PyObject_CallOneArg(delivery->callback, item);
        Py_DECREF(item);
        if (returned == NULL) {
            PyObject *type, *value, *traceback;
            if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                goto done;  /* KeyboardInterrupt, SystemExit: not the callback's failure */
            }
            PyErr_Fetch(&type, &value, &traceback);
            PyErr_NormalizeException(&type, &value, &traceback);
            if (traceback != NULL) {
                PyException_SetTraceback(value, traceback);
            }
            Py_XDECREF(type);
            Py_XDECREF(traceback);
            result = Py_BuildValue("(nN)", position, value);
            goto done;
        }
        Py_DECREF(returned);
    }
    result = PyLong_FromSsize_t(position);
done:
    PyMem_Free(scratch.large);
    return result;
}

/* deliver_messages' buffer and nbytes arguments: the buffer is pinned, as in
   parse_messages, since the callback may run arbitrary code. */
static PyObject *
deliver_from_buffer(const delivery_t *delivery, PyObject *buffer_obj, PyObject *nbytes_obj)
{
    Py_ssize_t nbytes;
    Py_buffer buffer;
    PyObject *result;

    if ((nbytes = index_argument(nbytes_obj, "nbytes")) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(buffer_obj, &buffer, PyBUF_SIMPLE) != 0) {
        return NULL;
    }
    if (nbytes > buffer.len) {
        PyErr_Format(PyExc_ValueError, "nbytes %zd exceeds the buffer's %zd bytes", nbytes,
                     buffer.len);
        PyBuffer_Release(&buffer);
        return NULL;
    }
    result = deliver_from(delivery, (const unsigned char *)buffer.buf, nbytes);
    PyBuffer_Release(&buffer);
    return result;
}

static PyObject *
deliver_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    delivery_t delivery;

    (void)module;
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError,
                     "deliver_messages() takes 7 positional arguments but %zd were given",
                     nargs);
        return NULL;
    }
    if (delivery_arguments(args, &delivery) != 0) {
        return NULL;
    }
    return deliver_from_buffer(&delivery, args[5], args[6]);
}

/* --- MessageDeliverer: deliver_messages with its first five arguments bound ------------- */

typedef struct {
    PyObject_HEAD
    delivery_t delivery;  /* holds a reference to each of its objects */
    vectorcallfunc vectorcall;
} DelivererObject;

static PyTypeObject DelivererType;

static PyObject *
deliverer_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_Format(PyExc_TypeError,
                     "MessageDeliverer takes 2 positional arguments (buffer, nbytes)");
        return NULL;
    }
    return deliver_from_buffer(&((DelivererObject *)self)->delivery, args[0], args[1]);
}

static PyObject *
deliverer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    DelivererObject *self;
    delivery_t delivery;

    if ((kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) || PyTuple_GET_SIZE(args) != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "MessageDeliverer(callback, owner, open_state, mask_bit, max_payload)");
        return NULL;
    }
    if (delivery_arguments(&PyTuple_GET_ITEM(args, 0), &delivery) != 0) {
        return NULL;
    }
    self = (DelivererObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->delivery = delivery;
    Py_INCREF(delivery.callback);
    Py_INCREF(delivery.owner);
    Py_INCREF(delivery.open_state);
    self->vectorcall = deliverer_vectorcall;
    return (PyObject *)self;
}

static int
deliverer_traverse(DelivererObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->delivery.callback);
    Py_VISIT(self->delivery.owner);
    Py_VISIT(self->delivery.open_state);
    return 0;
}

static int
deliverer_clear(DelivererObject *self)
{
    Py_CLEAR(self->delivery.callback);
    Py_CLEAR(self->delivery.owner);
    Py_CLEAR(self->delivery.open_state);
    return 0;
}

static void
deliverer_dealloc(DelivererObject *self)
{
    PyObject_GC_UnTrack(self);
    deliverer_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The deliverer's own call on a bytes object, which needs no pinning: what PlainReads does
   with the bytes of each read. */
static PyObject *
deliverer_take_bytes(PyObject *deliverer, PyObject *data)
{
    const delivery_t *delivery = &((DelivererObject *)deliverer)->delivery;
    if (delivery->callback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "MessageDeliverer was cleared");
        return NULL;
    }
    return deliver_from(delivery, (const unsigned char *)PyBytes_AS_STRING(data),
                        PyBytes_GET_SIZE(data));
}

PyDoc_STRVAR(deliverer_doc,
"MessageDeliverer(callback, owner, open_state, mask_bit, max_payload)\n"
"--\n"
"\n"
"``deliver_messages`` with its first five arguments bound: calling it with\n"
"``(buffer, nbytes)`` is ``deliver_messages(callback, owner, open_state, mask_bit,\n"
"max_payload, buffer, nbytes)``, without checking those five again on every call.\n");

static PyTypeObject DelivererType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fullduplex.protocol._speedups.MessageDeliverer",
    .tp_basicsize = sizeof(DelivererObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = deliverer_doc,
    .tp_new = deliverer_new,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(DelivererObject, vectorcall),
    .tp_traverse = (traverseproc)deliverer_traverse,
    .tp_clear = (inquiry)deliverer_clear,
    .tp_dealloc = (destructor)deliverer_dealloc,
};

PyDoc_STRVAR(deliver_messages_doc,
"deliver_messages(callback, owner, open_state, mask_bit, max_payload, buffer, nbytes, /)\n"
"--\n"
"\n"
"Call ``callback(message)`` for each whole message in one plain frame at the head of\n"
"``buffer[:nbytes]``, in order, while ``owner.state is open_state``.\n"
"\n"
"Takes the frames `parse_messages` takes (from position 0), each message a ``str`` for\n"
"text or ``bytes`` for binary, and stops before the first frame it does not take, or once\n"
"``owner.state`` is no longer ``open_state`` (checked before each message).\n"
"\n"
"Returns:\n"
"    The position after the last frame taken; or, when ``callback`` raised an Exception,\n"
"    ``(position, exception)``, the frame of that message included in ``position``.\n"
"\n"
"Raises:\n"
"    TypeError, ValueError: an argument has the wrong type or value.\n"
"    BaseException: what ``callback`` raised, when it is no Exception.\n");

static PyObject *
frame_message(PyObject *module, PyObject *message)
{
    const char *payload;
    Py_ssize_t length, header;
    unsigned char first, *out;
    PyObject *frame;

    (void)module;
    if (PyUnicode_CheckExact(message)) {
        /* An ASCII str is its own UTF-8; any other str caches its UTF-8 in itself. Lone
           surrogates raise UnicodeEncodeError, as str.encode() does. */
        payload = PyUnicode_AsUTF8AndSize(message, &length);
        if (payload == NULL) {
            return NULL;
        }
        first = 0x81;  /* FIN, TEXT */
    }
    else if (PyBytes_CheckExact(message)) {
        payload = PyBytes_AS_STRING(message);
        length = PyBytes_GET_SIZE(message);
        first = 0x82;  /* FIN, BINARY */
    }
    else {
        PyErr_Format(PyExc_TypeError, "cannot send %.100s; use str or bytes",
                     Py_TYPE(message)->tp_name);
        return NULL;
    }
    header = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
    frame = PyBytes_FromStringAndSize(NULL, header + length);
    if (frame == NULL) {
        return NULL;
    }
    out = (unsigned char *)PyBytes_AS_STRING(frame);
    out[0] = first;
    if (header == 2) {
        out[1] = (unsigned char)length;
    }
    else if (header == 4) {
        out[1] = 126;
        out[2] = (unsigned char)(length >> 8);
        out[3] = (unsigned char)length;
    }
    else {
        uint64_t wide = (uint64_t)length;
        int i;
        out[1] = 127;
        for (i = 9; i >= 2; i--) {
            out[i] = (unsigned char)wide;
            wide >>= 8;
        }
    }
    memcpy(out + header, payload, (size_t)length);
    return frame;
}

PyDoc_STRVAR(frame_message_doc,
"frame_message(message, /)\n"
"--\n"
"\n"
"Return one unmasked frame carrying the whole ``message``, header and payload in one bytes\n"
"object: FIN and TEXT with its UTF-8 for a ``str``, FIN and BINARY for ``bytes``.\n"
"\n"
"Raises:\n"
"    TypeError: ``message`` is not exactly ``str`` or ``bytes``.\n"
"    UnicodeEncodeError: the str holds a lone surrogate.\n");

PyDoc_STRVAR(apply_mask_doc,
"apply_mask(data, mask)\n"
"--\n"
"\n"
"Return ``data`` XORed with the repeating 4-byte ``mask`` (RFC 6455 section 5.3).\n"
"\n"
"Args:\n"
"    data: the payload, any bytes-like object.\n"
"    mask: the masking key, a bytes-like object of exactly 4 bytes.\n"
"\n"
"Returns:\n"
"    The masked (or unmasked: it is the same operation) payload as bytes.\n"
"\n"
"Raises:\n"
"    TypeError: an argument is not bytes-like.\n"
"    ValueError: the mask is not 4 bytes long.\n");

/* --- PlainReads: the compiled twin of io/asyncio's _PlainReads -------------------------- */

/* The names looked up on the connection, interned once by the module's exec slot. */
static PyObject *name_deliver, *name_receive, *name_replies, *name_transport, *name_is_closing,
    *name_write, *name_finish_read, *name_eof_received, *name_connection_lost,
    *name_pause_writing, *name_resume_writing;

typedef struct {
    PyObject_HEAD
    PyObject *connection;
    /* The list that each read lends the connection as its ``_replies``: emptied, not freed,
       after the read. */
    PyObject *replies;
    Py_ssize_t deliver_offset, replies_offset, transport_offset;
} PlainReadsObject;

static int
plain_reads_init(PlainReadsObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *connection, *replies;
    static char *keywords[] = {"connection", NULL};

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:PlainReads", keywords, &connection)) {
        return -1;
    }
    if ((replies = PyList_New(0)) == NULL) {
        return -1;
    }
    Py_XSETREF(self->replies, replies);
    Py_XSETREF(self->connection, Py_NewRef(connection));
    self->deliver_offset = slot_offset(Py_TYPE(connection), name_deliver, 0);
    self->replies_offset = slot_offset(Py_TYPE(connection), name_replies, 1);
    self->transport_offset = slot_offset(Py_TYPE(connection), name_transport, 0);
    return 0;
}

static int
plain_reads_traverse(PlainReadsObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->connection);
    Py_VISIT(self->replies);
    return 0;
}

static int
plain_reads_clear(PlainReadsObject *self)
{
    Py_CLEAR(self->connection);
    Py_CLEAR(self->replies);
    return 0;
}

static void
plain_reads_dealloc(PlainReadsObject *self)
{
    PyObject_GC_UnTrack(self);
    plain_reads_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The connection, or NULL with RuntimeError set when the object was never initialized. */
static PyObject *
plain_reads_connection(PlainReadsObject *self)
{
    if (self->connection == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "PlainReads was not initialized");
    }
    return self->connection;
}

/* Write the replies framed during a read: one bytes object, at once, unless the transport is
   gone or closing (then they are dropped, as _flush drops what comes after the close). */
static int
write_replies(PlainReadsObject *self, PyObject *connection, PyObject *replies)
{
    PyObject *transport, *closing, *data, *written;
    int is_closing;

    transport = get_slot(connection, self->transport_offset, name_transport);
    if (transport == NULL) {
        return -1;
    }
    if (transport == Py_None) {
        Py_DECREF(transport);
        return 0;
    }
    closing = PyObject_CallMethodNoArgs(transport, name_is_closing);
    if (closing == NULL) {
        Py_DECREF(transport);
        return -1;
    }
    is_closing = PyObject_IsTrue(closing);
    Py_DECREF(closing);
    if (is_closing != 0) {
        Py_DECREF(transport);
        return is_closing < 0 ? -1 : 0;
    }
    if (PyList_GET_SIZE(replies) == 1) {
        data = Py_NewRef(PyList_GET_ITEM(replies, 0));
    }
    else {
        /* Joined: they are small, and one buffer beats a writev of many. */
        PyObject *empty = PyBytes_FromStringAndSize(NULL, 0);
        if (empty == NULL) {
            Py_DECREF(transport);
            return -1;
        }
        data = _PyBytes_Join(empty, replies);
        Py_DECREF(empty);
        if (data == NULL) {
            Py_DECREF(transport);
            return -1;
        }
    }
    written = PyObject_CallMethodOneArg(transport, name_write, data);
    Py_DECREF(data);
    Py_DECREF(transport);
    if (written == NULL) {
        return -1;
    }
    Py_DECREF(written);
    return 0;
}

static PyObject *
plain_reads_data_received(PlainReadsObject *self, PyObject *data)
{
    PyObject *connection, *deliver, *replies, *lent, *taken = NULL, *nbytes_obj;
    PyObject *result = NULL, *call_args[2];
    Py_ssize_t nbytes, taken_bytes;
    int failed;

    if ((connection = plain_reads_connection(self)) == NULL) {
        return NULL;
    }
    /* Held: a callback may replace this object as the transport's protocol. */
    Py_INCREF(connection);
    lent = Py_NewRef(self->replies);
    deliver = get_slot(connection, self->deliver_offset, name_deliver);
    if (deliver == NULL) {
        goto done;
    }
    if (deliver == Py_None) {
        result = PyObject_CallMethodOneArg(connection, name_receive, data);
        goto done;
    }
    if ((nbytes = PyObject_Size(data)) < 0) {
        goto done;
    }
    /* send_nowait frames the callback's replies into this list (_PlainReads.data_received). */
    if (set_slot(connection, self->replies_offset, name_replies, lent) != 0) {
        goto done;
    }
    if (Py_IS_TYPE(deliver, &DelivererType) && PyBytes_CheckExact(data)) {
        taken = deliverer_take_bytes(deliver, data);  /* the usual case, without the call */
    }
    else if ((nbytes_obj = PyLong_FromSsize_t(nbytes)) != NULL) {
        call_args[0] = data;
        call_args[1] = nbytes_obj;
        taken = PyObject_Vectorcall(deliver, call_args, 2, NULL);
        Py_DECREF(nbytes_obj);
    }
    /* Read back: a write during the read (_flush) may have taken the replies already. */
    replies = get_slot(connection, self->replies_offset, name_replies);
    failed = replies == NULL
             || set_slot(connection, self->replies_offset, name_replies, Py_None) != 0;
    if (!failed && taken != NULL && replies == lent && PyList_GET_SIZE(lent) > 0) {
        failed = write_replies(self, connection, lent) != 0;
    }
    Py_XDECREF(replies);
    /* Emptied for the next read, whoever wrote its frames. */
    if (PyList_GET_SIZE(lent) > 0 && PyList_SetSlice(lent, 0, PyList_GET_SIZE(lent), NULL) != 0) {
        failed = 1;
    }
    if (failed || taken == NULL) {
        Py_XDECREF(taken);
        goto done;
    }
    if (PyLong_CheckExact(taken)) {
        taken_bytes = PyLong_AsSsize_t(taken);
        if (taken_bytes == -1 && PyErr_Occurred()) {
            Py_DECREF(taken);
            goto done;
        }
        if (taken_bytes == nbytes) {
            Py_DECREF(taken);
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    result = PyObject_CallMethodObjArgs(connection, name_finish_read, taken, data, NULL);
    Py_DECREF(taken);
done:
    Py_XDECREF(deliver);
    Py_DECREF(lent);
    Py_DECREF(connection);
    return result;
}

/* The other protocol methods: the connection's own, called with the same arguments. */
static PyObject *
plain_reads_forward(PlainReadsObject *self, PyObject *name, PyObject *argument)
{
    PyObject *connection = plain_reads_connection(self);
    if (connection == NULL) {
        return NULL;
    }
    if (argument == NULL) {
        return PyObject_CallMethodNoArgs(connection, name);
    }
    return PyObject_CallMethodOneArg(connection, name, argument);
}

static PyObject *
plain_reads_eof_received(PlainReadsObject *self, PyObject *unused)
{
    (void)unused;
    return plain_reads_forward(self, name_eof_received, NULL);
}

static PyObject *
plain_reads_connection_lost(PlainReadsObject *self, PyObject *exc)
{
    return plain_reads_forward(self, name_connection_lost, exc);
}

static PyObject *
plain_reads_pause_writing(PlainReadsObject *self, PyObject *unused)
{
    (void)unused;
    return plain_reads_forward(self, name_pause_writing, NULL);
}

static PyObject *
plain_reads_resume_writing(PlainReadsObject *self, PyObject *unused)
{
    (void)unused;
    return plain_reads_forward(self, name_resume_writing, NULL);
}

static PyMethodDef plain_reads_methods[] = {
    {"data_received", (PyCFunction)plain_reads_data_received, METH_O,
     "Deliver the read's whole messages to the callback and write its replies."},
    {"eof_received", (PyCFunction)plain_reads_eof_received, METH_NOARGS,
     "``connection.eof_received()``."},
    {"connection_lost", (PyCFunction)plain_reads_connection_lost, METH_O,
     "``connection.connection_lost(exc)``."},
    {"pause_writing", (PyCFunction)plain_reads_pause_writing, METH_NOARGS,
     "``connection.pause_writing()``."},
    {"resume_writing", (PyCFunction)plain_reads_resume_writing, METH_NOARGS,
     "``connection.resume_writing()``."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef plain_reads_members[] = {
    {"connection", T_OBJECT, offsetof(PlainReadsObject, connection), READONLY,
     "The connection whose reads this object takes."},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(plain_reads_doc,
"PlainReads(connection)\n"
"--\n"
"\n"
"A transport's plain protocol for a connection whose messages go to a callback: the\n"
"compiled twin of ``fullduplex.io.asyncio.plumbing._PlainReads``, which defines its\n"
"contract. It calls only methods and attributes of ``connection``; it knows no event loop\n"
"and no socket.\n"
"\n"
"``data_received(data)``: with ``connection._deliver`` None, ``connection._receive(data)``.\n"
"Otherwise sets ``connection._replies`` to a new list, calls\n"
"``connection._deliver(data, len(data))``, resets ``connection._replies`` to None and, when\n"
"the list it read back holds frames, writes them with ``connection.transport.write`` in one\n"
"bytes object unless the transport is None or closing; then, unless every byte was taken,\n"
"``connection._finish_read(taken, data)``. The other methods call the connection's own.\n");

static PyTypeObject PlainReadsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fullduplex.protocol._speedups.PlainReads",
    .tp_basicsize = sizeof(PlainReadsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = plain_reads_doc,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)plain_reads_init,
    .tp_traverse = (traverseproc)plain_reads_traverse,
    .tp_clear = (inquiry)plain_reads_clear,
    .tp_dealloc = (destructor)plain_reads_dealloc,
    .tp_methods = plain_reads_methods,
    .tp_members = plain_reads_members,
};

static int
speedups_exec(PyObject *module)
{
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&name_deliver, "_deliver"},
        {&name_receive, "_receive"},
        {&name_replies, "_replies"},
        {&name_transport, "transport"},
        {&name_is_closing, "is_closing"},
        {&name_write, "write"},
        {&name_finish_read, "_finish_read"},
        {&name_eof_received, "eof_received"},
        {&name_connection_lost, "connection_lost"},
        {&name_pause_writing, "pause_writing"},
        {&name_resume_writing, "resume_writing"},
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (*names[i].slot == NULL
            && (*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL) {
            return -1;
        }
    }
    if (PyType_Ready(&PlainReadsType) != 0 || PyType_Ready(&DelivererType) != 0) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "MessageDeliverer", (PyObject *)&DelivererType) != 0) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "PlainReads", (PyObject *)&PlainReadsType);
}

/* --- HTTP/1.1 request heads (protocol/http_server.py) ------------------------------------
 *
 * parse_request_head(buffer, end, max_headers) parses the request head buffer[:end] (without
 * the empty line that ends it) when it is plainly valid, and returns what
 * `http_server._parse_head_python` returns for it: (method, target, http_version, items,
 * host_count, framing, content_length). Anything else (a malformed line, another HTTP version, more than
 * max_headers fields) returns None, and the Python parser parses the head again to refuse it
 * with the right status and message: this code never has to say what is wrong, only never
 * accept what the Python parser refuses.
 */

/* RFC 9110 §5.6.2: tchar. */
static const unsigned char TOKEN_CHARS[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

/* The framing fields' bits, as http_server.py's _FRAMING_* constants. */
#define FRAMING_TRANSFER_ENCODING 1
#define FRAMING_CONTENT_LENGTH 2
#define FRAMING_CONNECTION 4
#define FRAMING_EXPECT 8
#define FRAMING_UPGRADE 16

static int
field_value_char(unsigned char c)
{
    /* RFC 9110 §5.5: field-vchar / SP / HTAB, obs-text included; no CTL, no DEL. */
    return (c >= 0x20 && c != 0x7f) || c == '\t';
}

static int
name_is(const unsigned char *name, Py_ssize_t length, const char *lowered)
{
    Py_ssize_t i;
    if ((size_t)length != strlen(lowered)) {
        return 0;
    }
    for (i = 0; i < length; i++) {
        unsigned char c = name[i];
        if (c >= 'A' && c <= 'Z') {
            c += 'a' - 'A';
        }
        if (c != (unsigned char)lowered[i]) {
            return 0;
        }
    }
    return 1;
}

static int
framing_bit(const unsigned char *name, Py_ssize_t length)
{
    switch (length) {
    case 6:
        return name_is(name, length, "expect") ? FRAMING_EXPECT : 0;
    case 7:
        return name_is(name, length, "upgrade") ? FRAMING_UPGRADE : 0;
    case 10:
        return name_is(name, length, "connection") ? FRAMING_CONNECTION : 0;
    case 14:
        return name_is(name, length, "content-length") ? FRAMING_CONTENT_LENGTH : 0;
    case 17:
        return name_is(name, length, "transfer-encoding") ? FRAMING_TRANSFER_ENCODING : 0;
    default:
        return 0;
    }
}

/* Append a latin-1 str of [start, stop) to items; -1 on a Python error. */
static int
append_text(PyObject *items, const unsigned char *start, const unsigned char *stop)
{
    PyObject *text = PyUnicode_DecodeLatin1((const char *)start, stop - start, NULL);
    int appended;
    if (text == NULL) {
        return -1;
    }
    appended = PyList_Append(items, text);
    Py_DECREF(text);
    return appended;
}

/* Parse the field lines in [p, stop) into items (name, value, name, value...); return 1 when
   they are plainly valid, 0 when not, -1 on a Python error. */
static int
parse_fields(const unsigned char *p, const unsigned char *stop, Py_ssize_t max_headers,
             PyObject *items, long *host_count, long *framing, PyObject **content_length)
{
    Py_ssize_t count = 0;
    int length_fields = 0;
    while (p < stop) {
        const unsigned char *name = p, *colon, *value, *value_end;
        while (p < stop && TOKEN_CHARS[*p]) {
            p++;
        }
        if (p == name || p == stop || *p != ':') {
            return 0;
        }
        colon = p;
        value = ++p;
        while (p < stop && field_value_char(*p)) {
            p++;
        }
        value_end = p;
        if (p < stop) {
            /* Only a CRLF ends a line, and another field follows it: the head's last CRLF is
               not in buffer[:end]. */
            if (stop - p < 3 || p[0] != '\r' || p[1] != '\n') {
                return 0;
            }
            p += 2;
        }
        if (++count > max_headers) {
            return 0;
        }
        while (value < value_end && (*value == ' ' || *value == '\t')) {
            value++;
        }
        while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t')) {
            value_end--;
        }
        if (name_is(name, colon - name, "host")) {
            (*host_count)++;
        }
        else {
            int bit = framing_bit(name, colon - name);
            *framing |= bit;
            if (bit == FRAMING_CONTENT_LENGTH && ++length_fields == 1) {
                *content_length = PyUnicode_DecodeLatin1((const char *)value,
                                                         value_end - value, NULL);
                if (*content_length == NULL) {
                    return -1;
                }
            }
        }
        if (append_text(items, name, colon) < 0 || append_text(items, value, value_end) < 0) {
            return -1;
        }
    }
    if (length_fields > 1) {
        Py_CLEAR(*content_length);  /* several: the Python side reads them all */
    }
    return 1;
}

PyDoc_STRVAR(parse_request_head_doc,
"parse_request_head(buffer, end, max_headers, /)\n--\n\n"
"Return (method, target, http_version, items, host_count, framing, content_length) for the\n"
"plainly valid request head buffer[:end], else None (see http_server._parse_head_python).");

static PyObject *
parse_request_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t end, max_headers;
    const unsigned char *start, *p, *stop, *method_end, *target, *target_end, *line_end;
    const char *version;
    PyObject *items = NULL, *result = NULL, *content_length = NULL;
    long host_count = 0, framing = 0;
    int fields;

    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "parse_request_head expects 3 arguments");
        return NULL;
    }
    end = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    if (end == -1 && PyErr_Occurred()) {
        return NULL;
    }
    max_headers = PyNumber_AsSsize_t(args[2], PyExc_OverflowError);
    if (max_headers == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (end < 0 || end > view.len) {
        PyErr_SetString(PyExc_ValueError, "end lies outside the buffer");
        goto done;
    }
    start = p = (const unsigned char *)view.buf;
    stop = start + end;

    /* request-line = method SP request-target SP HTTP-version (RFC 9112 §3) */
    while (p < stop && TOKEN_CHARS[*p]) {
        p++;
    }
    if (p == start || p == stop || *p != ' ') {
        goto invalid;
    }
    method_end = p;
    target = ++p;
    while (p < stop && *p >= 0x21 && *p <= 0x7e) {
        p++;
    }
    if (p == target || p == stop || *p != ' ') {
        goto invalid;
    }
    target_end = p++;
    line_end = p;
    while (line_end < stop && *line_end != '\r') {
        line_end++;
    }
    if (line_end - p != 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '1' && p[7] != '0')) {
        goto invalid;
    }
    version = p[7] == '1' ? "1.1" : "1.0";
    if (line_end < stop && (stop - line_end < 3 || line_end[1] != '\n')) {
        goto invalid;
    }

    items = PyList_New(0);
    if (items == NULL) {
        goto done;
    }
    fields = line_end < stop
        ? parse_fields(line_end + 2, stop, max_headers, items, &host_count, &framing,
                       &content_length)
        : 1;
    if (fields < 0) {
        goto done;
    }
    if (fields == 0) {
        goto invalid;
    }
    {
        PyObject *method = PyUnicode_DecodeLatin1((const char *)start, method_end - start, NULL);
        PyObject *path = method == NULL ? NULL
            : PyUnicode_DecodeLatin1((const char *)target, target_end - target, NULL);
        if (path != NULL) {
            result = Py_BuildValue("(O O s O l l O)", method, path, version, items, host_count,
                                   framing, content_length == NULL ? Py_None : content_length);
        }
        Py_XDECREF(method);
        Py_XDECREF(path);
    }
    goto done;

invalid:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(items);
    Py_XDECREF(content_length);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL | METH_KEYWORDS,
     apply_mask_doc},
    {"unmask_payload", (PyCFunction)(void (*)(void))unmask_payload, METH_FASTCALL,
     unmask_payload_doc},
    {"parse_messages", (PyCFunction)(void (*)(void))parse_messages, METH_FASTCALL,
     parse_messages_doc},
    {"deliver_messages", (PyCFunction)(void (*)(void))deliver_messages, METH_FASTCALL,
     deliver_messages_doc},
    {"frame_message", (PyCFunction)frame_message, METH_O, frame_message_doc},
    {"parse_request_head", (PyCFunction)(void (*)(void))parse_request_head, METH_FASTCALL,
     parse_request_head_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, speedups_exec},
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "fullduplex.protocol._speedups",
    .m_doc = "Compiled helpers for fullduplex; see fullduplex/protocol/_compiled.py.",
    .m_size = 0,
    .m_methods = speedups_methods,
    .m_slots = speedups_slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
