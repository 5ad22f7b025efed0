// Command noop is the do-nothing baseline of bench/run.sh: an HTTP server that
// answers every request 200 with an empty body, as fast as net/http allows.
// -pprof serves net/http/pprof on a second address, so that bench/profile.sh
// profiles it exactly as it profiles jwtgate (--pprof-bind-address).
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/pprof"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	pprofAddr := flag.String("pprof", "", "address to serve /debug/pprof/ on (off when empty)")
	flag.Parse()
	if *pprofAddr != "" {
		m := http.NewServeMux()
		m.HandleFunc("/debug/pprof/profile", pprof.Profile)
		m.HandleFunc("/debug/pprof/", pprof.Index)
		ps := &http.Server{Addr: *pprofAddr, Handler: m, ReadHeaderTimeout: 10 * time.Second}
		go func() { log.Fatal(ps.ListenAndServe()) }()
	}
	zero := []string{"0"}
	s := &http.Server{
		Addr: *listen,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Content-Length"] = zero
			w.WriteHeader(http.StatusOK)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	log.Fatal(s.ListenAndServe())
}
