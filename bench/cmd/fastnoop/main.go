// Command fastnoop is the do-nothing server of bench/run.sh on fasthttp, for
// information beside the net/http one (bench/cmd/noop), which the targets
// are stated against: it shows what the HTTP server alone costs when it is
// fasthttp, as jwtgate's decision listener is by default.
package main

import (
	"flag"
	"log"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	s := &fasthttp.Server{
		Handler:               func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(fasthttp.StatusOK) },
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		ReadTimeout:           10 * time.Second,
		IdleTimeout:           120 * time.Second,
	}
	log.Fatal(s.ListenAndServe(*listen))
}
