// The pod sandbox's pause process for the real test node (tests/cluster/realnode.py): the upstream
// pause image cannot be pulled here. It holds the pod's namespaces, reaps orphaned children and exits
// on SIGINT or SIGTERM. Built static by `tests/cluster/build.sh kubelet`.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
