// vcsim: govmomi's vCenter simulator (the VPX inventory: a datacenter, a cluster, hosts, a
// datastore and "VM Network") as a process, for tests that drive it with govc.
//
// govmomi's own vcsim command is a nested module that `go install module@version` cannot build
// (see ../govc); this one uses the simulator package at the version go.mod pins. It listens only
// where -l says (127.0.0.1 by default), prints `export GOVC_URL=... GOVC_SIM_PID=...` once it
// answers, and runs until SIGINT or SIGTERM.
//
// Usage: vcsim [-l 127.0.0.1:0] [-tls=true]
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("l", "127.0.0.1:0", "address to listen on (host:port; port 0 picks a free one)")
	useTLS := flag.Bool("tls", true, "serve https with the simulator's self-signed certificate")
	flag.Parse()

	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vcsim: -l %q: %v (expected host:port)\n", *listen, err)
		os.Exit(2)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		// Tests must not open a simulator to the machine's networks.
		fmt.Fprintf(os.Stderr, "vcsim: -l %q: only loopback addresses are allowed\n", *listen)
		os.Exit(2)
	}

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		fmt.Fprintf(os.Stderr, "vcsim: creating the inventory: %v\n", err)
		os.Exit(1)
	}
	defer model.Remove()
	model.Service.Listen = &url.URL{Host: *listen}
	if *useTLS {
		model.Service.TLS = new(tls.Config)
	}
	server := model.Service.NewServer()
	defer server.Close()

	fmt.Printf("export GOVC_URL=%s GOVC_SIM_PID=%d\n", server.URL, os.Getpid())
	_ = os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
