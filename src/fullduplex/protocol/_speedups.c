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
 * The masking loop XORs 8 bytes at a time with a 64-bit word holding the mask twice. Words are
 * moved with memcpy, which compilers turn into plain (unaligned) loads and stores, so any
 * alignment of `data` is fine; the last 0-7 bytes are done one at a time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

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

static PyObject *
deliver_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    static PyObject *state_name = NULL;
    PyObject *callback, *owner, *open_state, *result = NULL;
    Py_ssize_t nbytes, position = 0;
    long mask_bit;
    long long max_payload;
    const unsigned char *data;
    Py_buffer buffer;
    scratch_t scratch;

    (void)module;
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError,
                     "deliver_messages() takes 7 positional arguments but %zd were given",
                     nargs);
        return NULL;
    }
    if (state_name == NULL && (state_name = PyUnicode_InternFromString("state")) == NULL) {
        return NULL;
    }
    callback = args[0];
    owner = args[1];
    open_state = args[2];
    if (frame_limits(args[3], args[4], &mask_bit, &max_payload) != 0) {
        return NULL;
    }
    if ((nbytes = index_argument(args[6], "nbytes")) < 0) {
        return NULL;
    }
    /* Pinned, as in parse_messages: the callback may run arbitrary code. */
    if (PyObject_GetBuffer(args[5], &buffer, PyBUF_SIMPLE) != 0) {
        return NULL;
    }
    if (nbytes > buffer.len) {
        PyErr_Format(PyExc_ValueError, "nbytes %zd exceeds the buffer's %zd bytes", nbytes,
                     buffer.len);
        PyBuffer_Release(&buffer);
        return NULL;
    }
    data = (const unsigned char *)buffer.buf;
    scratch.large = NULL;
    scratch.large_size = 0;

    while (nbytes - position >= 2) {
        PyObject *item, *state, *returned;
        Py_ssize_t frame_size;
        int is_open, taken;

        /* Checked before every message: the previous callback may have closed or failed the
           connection, and then the slow path decides what the rest of the bytes mean. */
        state = PyObject_GetAttr(owner, state_name);
        if (state == NULL) {
            goto done;
        }
        is_open = state == open_state;
        Py_DECREF(state);
        if (!is_open) {
            break;
        }
        taken = take_plain_frame(data + position, nbytes - position, mask_bit, max_payload,
                                 &scratch, &item, &frame_size);
        if (taken < 0) {
            goto done;
        }
        if (taken == 0) {
            break;
        }
        position += frame_size;
        returned = PyObject_CallOneArg(callback, item);
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
    PyBuffer_Release(&buffer);
    return result;
}

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
