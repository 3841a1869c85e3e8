//go:build cgo

package nsenter

/*
#cgo CFLAGS: -Wall -O2
extern void berth_nsenter(void);
static void __attribute__((constructor)) berth_nsenter_ctor(void) { berth_nsenter(); }
*/
import "C"

// Available says the constructor is linked in: exec works only then.
const Available = true
