using System.Runtime.InteropServices;
using Netloom.Interop.Tests.Support;
using static Netloom.Interop.IoUring;

namespace Netloom.Interop.Tests.Offload;

/// <summary>io_uring's structs and constants, and the errno and socket constants the engine uses, as Netloom declares them, against the kernel's and libc's headers through gcc.</summary>
public class UringLayoutTests
{
    private const string Program = """
#include <stdio.h>
#include <stddef.h>
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#define P(name, value) printf("%s=%ld\n", name, (long)(value))
int main(void) {
  P("params", sizeof(struct io_uring_params)); P("params.features", offsetof(struct io_uring_params, features));
  P("params.sq_off", offsetof(struct io_uring_params, sq_off)); P("params.cq_off", offsetof(struct io_uring_params, cq_off));
  P("sqoff", sizeof(struct io_sqring_offsets)); P("sqoff.array", offsetof(struct io_sqring_offsets, array)); P("sqoff.flags", offsetof(struct io_sqring_offsets, flags));
  P("cqoff", sizeof(struct io_cqring_offsets)); P("cqoff.cqes", offsetof(struct io_cqring_offsets, cqes)); P("cqoff.overflow", offsetof(struct io_cqring_offsets, overflow));
  P("sqe", sizeof(struct io_uring_sqe)); P("sqe.fd", offsetof(struct io_uring_sqe, fd)); P("sqe.off", offsetof(struct io_uring_sqe, off));
  P("sqe.addr", offsetof(struct io_uring_sqe, addr)); P("sqe.len", offsetof(struct io_uring_sqe, len)); P("sqe.op_flags", offsetof(struct io_uring_sqe, rw_flags));
  P("sqe.user_data", offsetof(struct io_uring_sqe, user_data)); P("sqe.buf_index", offsetof(struct io_uring_sqe, buf_index));
  P("sqe.file_index", offsetof(struct io_uring_sqe, file_index)); P("sqe.addr3", offsetof(struct io_uring_sqe, addr3));
  P("cqe", sizeof(struct io_uring_cqe)); P("cqe.res", offsetof(struct io_uring_cqe, res)); P("cqe.flags", offsetof(struct io_uring_cqe, flags));
  P("probe", sizeof(struct io_uring_probe)); P("probe_op", sizeof(struct io_uring_probe_op));
  P("buf", sizeof(struct io_uring_buf)); P("buf_reg", sizeof(struct io_uring_buf_reg));
  P("OFF_CQ_RING", IORING_OFF_CQ_RING); P("OFF_SQES", IORING_OFF_SQES);
  P("OP_ACCEPT", IORING_OP_ACCEPT); P("OP_RECV", IORING_OP_RECV); P("OP_SEND", IORING_OP_SEND); P("OP_SEND_ZC", IORING_OP_SEND_ZC);
  P("OP_TIMEOUT", IORING_OP_TIMEOUT); P("OP_ASYNC_CANCEL", IORING_OP_ASYNC_CANCEL); P("OP_CLOSE", IORING_OP_CLOSE);
  P("SETUP_SQPOLL", IORING_SETUP_SQPOLL); P("SETUP_SINGLE_ISSUER", IORING_SETUP_SINGLE_ISSUER); P("SETUP_DEFER_TASKRUN", IORING_SETUP_DEFER_TASKRUN);
  P("SETUP_TASKRUN_FLAG", IORING_SETUP_TASKRUN_FLAG); P("SQ_TASKRUN", IORING_SQ_TASKRUN);
  P("REGISTER_PROBE", IORING_REGISTER_PROBE); P("REGISTER_PBUF_RING", IORING_REGISTER_PBUF_RING); P("REGISTER_FILES", IORING_REGISTER_FILES);
  P("CQE_F_MORE", IORING_CQE_F_MORE); P("CQE_F_BUFFER", IORING_CQE_F_BUFFER); P("CQE_F_NOTIF", IORING_CQE_F_NOTIF);
  P("ACCEPT_MULTISHOT", IORING_ACCEPT_MULTISHOT); P("RECV_MULTISHOT", IORING_RECV_MULTISHOT); P("IOSQE_BUFFER_SELECT", IOSQE_BUFFER_SELECT);
  P("OP_NOP", IORING_OP_NOP); P("OP_READ", IORING_OP_READ); P("OP_SHUTDOWN", IORING_OP_SHUTDOWN);
  P("FILE_INDEX_ALLOC", IORING_FILE_INDEX_ALLOC); P("IOSQE_FIXED_FILE", IOSQE_FIXED_FILE); P("IOSQE_IO_LINK", IOSQE_IO_LINK);
  P("SETUP_CQSIZE", IORING_SETUP_CQSIZE); P("ENTER_GETEVENTS", IORING_ENTER_GETEVENTS); P("ENTER_SQ_WAKEUP", IORING_ENTER_SQ_WAKEUP);
  P("SQ_NEED_WAKEUP", IORING_SQ_NEED_WAKEUP); P("FEAT_SINGLE_MMAP", IORING_FEAT_SINGLE_MMAP); P("CQE_BUFFER_SHIFT", IORING_CQE_BUFFER_SHIFT);
  P("UNREGISTER_PBUF_RING", IORING_UNREGISTER_PBUF_RING); P("PROBE_OP_SUPPORTED", IO_URING_OP_SUPPORTED);
  P("EPERM", EPERM); P("EINTR", EINTR); P("EAGAIN", EAGAIN); P("ENOMEM", ENOMEM); P("EACCES", EACCES); P("EBUSY", EBUSY);
  P("EINVAL", EINVAL); P("ENOSYS", ENOSYS); P("ETIME", ETIME); P("EOPNOTSUPP", EOPNOTSUPP); P("ENOBUFS", ENOBUFS);
  P("ECONNRESET", ECONNRESET); P("ECANCELED", ECANCELED);
  P("SOL_SOCKET", SOL_SOCKET); P("SO_REUSEPORT", SO_REUSEPORT); P("SOCK_CLOEXEC", SOCK_CLOEXEC); P("SHUT_RDWR", SHUT_RDWR);
  P("MSG_NOSIGNAL", MSG_NOSIGNAL); P("MAP_POPULATE", MAP_POPULATE); P("EFD_CLOEXEC", EFD_CLOEXEC); P("EFD_NONBLOCK", EFD_NONBLOCK);
  P("SYS_io_uring_setup", SYS_io_uring_setup); P("SYS_io_uring_enter", SYS_io_uring_enter); P("SYS_io_uring_register", SYS_io_uring_register);
  return 0;
}
""";

    [ToolFact("gcc")]
    public unsafe void Uring_structs_and_constants_match_the_c_compiler()
    {
        long Off<T>(string field) where T : struct => Marshal.OffsetOf<T>(field).ToInt64();
        var ours = new Dictionary<string, long>
        {
            ["params"] = sizeof(Params), ["params.features"] = Off<Params>(nameof(Params.Features)),
            ["params.sq_off"] = Off<Params>(nameof(Params.SqOff)), ["params.cq_off"] = Off<Params>(nameof(Params.CqOff)),
            ["sqoff"] = sizeof(SqRingOffsets), ["sqoff.array"] = Off<SqRingOffsets>(nameof(SqRingOffsets.Array)), ["sqoff.flags"] = Off<SqRingOffsets>(nameof(SqRingOffsets.Flags)),
            ["cqoff"] = sizeof(CqRingOffsets), ["cqoff.cqes"] = Off<CqRingOffsets>(nameof(CqRingOffsets.Cqes)), ["cqoff.overflow"] = Off<CqRingOffsets>(nameof(CqRingOffsets.Overflow)),
            ["sqe"] = sizeof(Sqe), ["sqe.fd"] = Off<Sqe>(nameof(Sqe.Fd)), ["sqe.off"] = Off<Sqe>(nameof(Sqe.Off)), ["sqe.addr"] = Off<Sqe>(nameof(Sqe.Addr)),
            ["sqe.len"] = Off<Sqe>(nameof(Sqe.Len)), ["sqe.op_flags"] = Off<Sqe>(nameof(Sqe.OpFlags)), ["sqe.user_data"] = Off<Sqe>(nameof(Sqe.UserData)),
            ["sqe.buf_index"] = Off<Sqe>(nameof(Sqe.BufIndex)), ["sqe.file_index"] = Off<Sqe>(nameof(Sqe.FileIndex)), ["sqe.addr3"] = Off<Sqe>(nameof(Sqe.Addr3)),
            ["cqe"] = sizeof(Cqe), ["cqe.res"] = Off<Cqe>(nameof(Cqe.Res)), ["cqe.flags"] = Off<Cqe>(nameof(Cqe.Flags)),
            ["probe"] = sizeof(ProbeHeader), ["probe_op"] = sizeof(ProbeOp), ["buf"] = sizeof(Buf), ["buf_reg"] = sizeof(BufReg),
            ["OFF_CQ_RING"] = (long)OffCqRing, ["OFF_SQES"] = (long)OffSqes,
            ["OP_ACCEPT"] = OpAccept, ["OP_RECV"] = OpRecv, ["OP_SEND"] = OpSend, ["OP_SEND_ZC"] = OpSendZc, ["OP_TIMEOUT"] = OpTimeout,
            ["OP_ASYNC_CANCEL"] = OpAsyncCancel, ["OP_CLOSE"] = OpClose,
            ["SETUP_SQPOLL"] = SetupSqPoll, ["SETUP_SINGLE_ISSUER"] = SetupSingleIssuer, ["SETUP_DEFER_TASKRUN"] = SetupDeferTaskrun,
            ["SETUP_TASKRUN_FLAG"] = SetupTaskrunFlag, ["SQ_TASKRUN"] = SqTaskrun,
            ["REGISTER_PROBE"] = RegisterProbe, ["REGISTER_PBUF_RING"] = RegisterPbufRing, ["REGISTER_FILES"] = RegisterFiles,
            ["CQE_F_MORE"] = CqeFMore, ["CQE_F_BUFFER"] = CqeFBuffer, ["CQE_F_NOTIF"] = CqeFNotif,
            ["ACCEPT_MULTISHOT"] = AcceptMultishot, ["RECV_MULTISHOT"] = RecvMultishot, ["IOSQE_BUFFER_SELECT"] = SqeBufferSelect,
            ["OP_NOP"] = OpNop, ["OP_READ"] = OpRead, ["OP_SHUTDOWN"] = OpShutdown,
            ["FILE_INDEX_ALLOC"] = FileIndexAlloc, ["IOSQE_FIXED_FILE"] = SqeFixedFile, ["IOSQE_IO_LINK"] = SqeIoLink,
            ["SETUP_CQSIZE"] = SetupCqSize, ["ENTER_GETEVENTS"] = EnterGetEvents, ["ENTER_SQ_WAKEUP"] = EnterSqWakeup,
            ["SQ_NEED_WAKEUP"] = SqNeedWakeup, ["FEAT_SINGLE_MMAP"] = FeatSingleMmap, ["CQE_BUFFER_SHIFT"] = CqeBufferShift,
            ["UNREGISTER_PBUF_RING"] = UnregisterPbufRing, ["PROBE_OP_SUPPORTED"] = ProbeOpSupported,
            ["EPERM"] = Errno.EPERM, ["EINTR"] = Errno.EINTR, ["EAGAIN"] = Errno.EAGAIN, ["ENOMEM"] = Errno.ENOMEM, ["EACCES"] = Errno.EACCES,
            ["EBUSY"] = Errno.EBUSY, ["EINVAL"] = Errno.EINVAL, ["ENOSYS"] = Errno.ENOSYS, ["ETIME"] = Errno.ETIME,
            ["EOPNOTSUPP"] = Errno.EOPNOTSUPP, ["ENOBUFS"] = Errno.ENOBUFS, ["ECONNRESET"] = Errno.ECONNRESET, ["ECANCELED"] = Errno.ECANCELED,
            ["SOL_SOCKET"] = SocketCalls.SOL_SOCKET, ["SO_REUSEPORT"] = SocketCalls.SO_REUSEPORT, ["SOCK_CLOEXEC"] = SocketCalls.SOCK_CLOEXEC,
            ["SHUT_RDWR"] = SocketCalls.SHUT_RDWR, ["MSG_NOSIGNAL"] = SocketCalls.MSG_NOSIGNAL, ["MAP_POPULATE"] = Libc.MAP_POPULATE,
            ["EFD_CLOEXEC"] = Libc.EFD_CLOEXEC, ["EFD_NONBLOCK"] = Libc.EFD_NONBLOCK,
            ["SYS_io_uring_setup"] = SysSetup, ["SYS_io_uring_enter"] = SysEnter, ["SYS_io_uring_register"] = SysRegister,
        };
        CLayout.AssertSame(Program, ours);
    }
}
