// A static Go program (CGO_ENABLED=0: raw syscalls, no libc) reading data files from many
// goroutines on several OS threads, a time zone and the CA certificates, as Go servers do.
// Usage: goread DIR N — reads DIR/g0..g{N-1}; prints how many existed.
package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	dir := os.Args[1]
	n, _ := strconv.Atoi(os.Args[2])
	runtime.GOMAXPROCS(8)
	var found atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Pinned goroutines force the runtime to start more OS threads.
			if i%8 == 0 {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
			}
			if _, err := os.ReadFile(fmt.Sprintf("%s/g%d", dir, i)); err == nil {
				found.Add(1)
			}
		}(i)
	}
	var tzErr, certErr error
	wg.Add(2)
	go func() { defer wg.Done(); _, tzErr = time.LoadLocation("Europe/Paris") }()
	go func() { defer wg.Done(); _, certErr = x509.SystemCertPool() }()
	wg.Wait()
	if tzErr != nil || certErr != nil {
		fmt.Println("error:", tzErr, certErr)
		os.Exit(1)
	}
	fmt.Println("found", found.Load())
}
