package transmitter

import (
	"net"
	"syscall"
	"unsafe"
)

// sendQueue returns the bytes written to c that the peer has not
// acknowledged yet (TIOCOUTQ), or false when c is not a TCP socket.
func sendQueue(c net.Conn) (int64, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var n int32
	var errno syscall.Errno
	err = rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
	})
	if err != nil || errno != 0 {
		return 0, false
	}
	return int64(n), true
}
