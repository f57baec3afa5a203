"""The slice of linux/videodev2.h a UVC camera answers, as ctypes structures (x86-64 and arm64 layouts).

Request numbers are computed from the structures' sizes, as the kernel header does, so a layout that
drifted from the C one would turn into unknown requests (ENOTTY) rather than into misread fields.
"""

import ctypes

# -- request numbers -------------------------------------------------------------------------------
_IOC_WRITE = 1
_IOC_READ = 2


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("V") << 8) | nr


def _iowr(nr: int, struct: type) -> int:
    return _ioc(_IOC_READ | _IOC_WRITE, nr, ctypes.sizeof(struct))


def _ior(nr: int, struct: type) -> int:
    return _ioc(_IOC_READ, nr, ctypes.sizeof(struct))


def _iow(nr: int, struct: type) -> int:
    return _ioc(_IOC_WRITE, nr, ctypes.sizeof(struct))


def fourcc(code: str) -> int:
    a, b, c, d = (ord(ch) for ch in code)
    return a | (b << 8) | (c << 16) | (d << 24)


def fourcc_str(value: int) -> str:
    return "".join(chr((value >> shift) & 0xFF) for shift in (0, 8, 16, 24))


# -- structures ------------------------------------------------------------------------------------
class Capability(ctypes.Structure):
    _fields_ = [("driver", ctypes.c_char * 16), ("card", ctypes.c_char * 32), ("bus_info", ctypes.c_char * 32),
                ("version", ctypes.c_uint32), ("capabilities", ctypes.c_uint32), ("device_caps", ctypes.c_uint32),
                ("reserved", ctypes.c_uint32 * 3)]


class FmtDesc(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("type", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("description", ctypes.c_char * 32), ("pixelformat", ctypes.c_uint32), ("mbus_code", ctypes.c_uint32),
                ("reserved", ctypes.c_uint32 * 3)]


class FrmSizeDiscrete(ctypes.Structure):
    _fields_ = [("width", ctypes.c_uint32), ("height", ctypes.c_uint32)]


class FrmSizeEnum(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("pixel_format", ctypes.c_uint32), ("type", ctypes.c_uint32),
                ("discrete", FrmSizeDiscrete), ("stepwise_rest", ctypes.c_uint32 * 4),
                ("reserved", ctypes.c_uint32 * 2)]


class Fract(ctypes.Structure):
    _fields_ = [("numerator", ctypes.c_uint32), ("denominator", ctypes.c_uint32)]


class FrmIvalEnum(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("pixel_format", ctypes.c_uint32), ("width", ctypes.c_uint32),
                ("height", ctypes.c_uint32), ("type", ctypes.c_uint32), ("discrete", Fract),
                ("stepwise_rest", Fract * 2), ("reserved", ctypes.c_uint32 * 2)]


class PixFormat(ctypes.Structure):
    _fields_ = [("width", ctypes.c_uint32), ("height", ctypes.c_uint32), ("pixelformat", ctypes.c_uint32),
                ("field", ctypes.c_uint32), ("bytesperline", ctypes.c_uint32), ("sizeimage", ctypes.c_uint32),
                ("colorspace", ctypes.c_uint32), ("priv", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("ycbcr_enc", ctypes.c_uint32), ("quantization", ctypes.c_uint32), ("xfer_func", ctypes.c_uint32)]


class _FormatUnion(ctypes.Union):
    # raw_data[200]; the union holds pointers (v4l2_window), hence 8-byte alignment.
    _fields_ = [("pix", PixFormat), ("raw", ctypes.c_uint64 * 25)]


class Format(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("fmt", _FormatUnion)]


class CaptureParm(ctypes.Structure):
    _fields_ = [("capability", ctypes.c_uint32), ("capturemode", ctypes.c_uint32), ("timeperframe", Fract),
                ("extendedmode", ctypes.c_uint32), ("readbuffers", ctypes.c_uint32),
                ("reserved", ctypes.c_uint32 * 4)]


class _ParmUnion(ctypes.Union):
    _fields_ = [("capture", CaptureParm), ("raw", ctypes.c_uint8 * 200)]


class StreamParm(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("parm", _ParmUnion)]


class RequestBuffers(ctypes.Structure):
    _fields_ = [("count", ctypes.c_uint32), ("type", ctypes.c_uint32), ("memory", ctypes.c_uint32),
                ("capabilities", ctypes.c_uint32), ("flags", ctypes.c_uint8), ("reserved", ctypes.c_uint8 * 3)]


class Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class Timecode(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("frames", ctypes.c_uint8),
                ("seconds", ctypes.c_uint8), ("minutes", ctypes.c_uint8), ("hours", ctypes.c_uint8),
                ("userbits", ctypes.c_uint8 * 4)]


class _BufferMemory(ctypes.Union):
    _fields_ = [("offset", ctypes.c_uint32), ("userptr", ctypes.c_ulong), ("planes", ctypes.c_void_p),
                ("fd", ctypes.c_int32)]


class Buffer(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("type", ctypes.c_uint32), ("bytesused", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("field", ctypes.c_uint32), ("timestamp", Timeval),
                ("timecode", Timecode), ("sequence", ctypes.c_uint32), ("memory", ctypes.c_uint32),
                ("m", _BufferMemory), ("length", ctypes.c_uint32), ("reserved2", ctypes.c_uint32),
                ("request_fd", ctypes.c_int32)]


class QueryCtrl(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("type", ctypes.c_uint32), ("name", ctypes.c_char * 32),
                ("minimum", ctypes.c_int32), ("maximum", ctypes.c_int32), ("step", ctypes.c_int32),
                ("default_value", ctypes.c_int32), ("flags", ctypes.c_uint32), ("reserved", ctypes.c_uint32 * 2)]


class QueryMenu(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("id", ctypes.c_uint32), ("index", ctypes.c_uint32), ("name", ctypes.c_char * 32),
                ("reserved", ctypes.c_uint32)]


class Control(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("value", ctypes.c_int32)]


class ExtControls(ctypes.Structure):
    """Only its size matters here: the shim sends the control array flattened (see uvc_shim.c)."""
    _fields_ = [("which", ctypes.c_uint32), ("count", ctypes.c_uint32), ("error_idx", ctypes.c_uint32),
                ("request_fd", ctypes.c_int32), ("reserved", ctypes.c_uint32), ("controls", ctypes.c_void_p)]


class Input(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("name", ctypes.c_char * 32), ("type", ctypes.c_uint32),
                ("audioset", ctypes.c_uint32), ("tuner", ctypes.c_uint32), ("std", ctypes.c_uint64),
                ("status", ctypes.c_uint32), ("capabilities", ctypes.c_uint32), ("reserved", ctypes.c_uint32 * 3)]


# -- ioctls ----------------------------------------------------------------------------------------
VIDIOC_QUERYCAP = _ior(0, Capability)
VIDIOC_ENUM_FMT = _iowr(2, FmtDesc)
VIDIOC_G_FMT = _iowr(4, Format)
VIDIOC_S_FMT = _iowr(5, Format)
VIDIOC_REQBUFS = _iowr(8, RequestBuffers)
VIDIOC_QUERYBUF = _iowr(9, Buffer)
VIDIOC_QBUF = _iowr(15, Buffer)
VIDIOC_DQBUF = _iowr(17, Buffer)
VIDIOC_STREAMON = _iow(18, ctypes.c_int)
VIDIOC_STREAMOFF = _iow(19, ctypes.c_int)
VIDIOC_G_PARM = _iowr(21, StreamParm)
VIDIOC_S_PARM = _iowr(22, StreamParm)
VIDIOC_ENUMINPUT = _iowr(26, Input)
VIDIOC_G_CTRL = _iowr(27, Control)
VIDIOC_S_CTRL = _iowr(28, Control)
VIDIOC_QUERYCTRL = _iowr(36, QueryCtrl)
VIDIOC_QUERYMENU = _iowr(37, QueryMenu)
VIDIOC_G_INPUT = _ior(38, ctypes.c_int)
VIDIOC_S_INPUT = _iowr(39, ctypes.c_int)
VIDIOC_TRY_FMT = _iowr(64, Format)
VIDIOC_G_EXT_CTRLS = _iowr(71, ExtControls)
VIDIOC_S_EXT_CTRLS = _iowr(72, ExtControls)
VIDIOC_TRY_EXT_CTRLS = _iowr(73, ExtControls)
VIDIOC_ENUM_FRAMESIZES = _iowr(74, FrmSizeEnum)
VIDIOC_ENUM_FRAMEINTERVALS = _iowr(75, FrmIvalEnum)

IOCTL_NAMES = {value: name for name, value in globals().items() if name.startswith("VIDIOC_")}

# -- constants -------------------------------------------------------------------------------------
BUF_TYPE_VIDEO_CAPTURE = 1
MEMORY_MMAP = 1
FIELD_NONE = 1
COLORSPACE_SRGB = 8
FRMSIZE_TYPE_DISCRETE = 1
FRMIVAL_TYPE_DISCRETE = 1
FMT_FLAG_COMPRESSED = 0x1
INPUT_TYPE_CAMERA = 2

CAP_VIDEO_CAPTURE = 0x00000001
CAP_META_CAPTURE = 0x00800000
CAP_STREAMING = 0x04000000
CAP_EXT_PIX_FORMAT = 0x00200000
CAP_DEVICE_CAPS = 0x80000000
CAP_TIMEPERFRAME = 0x1000

BUF_FLAG_MAPPED = 0x1
BUF_FLAG_QUEUED = 0x2
BUF_FLAG_DONE = 0x4
BUF_FLAG_TIMESTAMP_MONOTONIC = 0x2000
BUF_FLAG_TSTAMP_SRC_SOE = 0x10000
BUF_CAP_SUPPORTS_MMAP = 0x1

CTRL_TYPE_INTEGER = 1
CTRL_TYPE_BOOLEAN = 2
CTRL_TYPE_MENU = 3
CTRL_FLAG_INACTIVE = 0x10
CTRL_FLAG_NEXT_CTRL = 0x80000000
CTRL_FLAG_NEXT_COMPOUND = 0x40000000
CTRL_WHICH_CUR_VAL = 0
CTRL_WHICH_DEF_VAL = 0x0F000000

CID_BRIGHTNESS = 0x00980900
CID_AUTO_WHITE_BALANCE = 0x0098090C
CID_GAIN = 0x00980913
CID_WHITE_BALANCE_TEMPERATURE = 0x0098091A
CID_EXPOSURE_AUTO = 0x009A0901
CID_EXPOSURE_ABSOLUTE = 0x009A0902
CID_FOCUS_ABSOLUTE = 0x009A090A
CID_FOCUS_AUTO = 0x009A090C

EXPOSURE_MANUAL = 1
EXPOSURE_APERTURE_PRIORITY = 3
