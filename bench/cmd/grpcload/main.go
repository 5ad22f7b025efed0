// Command grpcload is bench/run.sh's load generator for Envoy ext_authz gRPC
// servers: it sends the same CheckRequest (a GET with a bearer token, as
// Envoy builds it) from -concurrency workers over -conns HTTP/2 connections
// until -duration passes or -requests answers came, and prints one line in
// the shape bench/wrk.lua prints:
//
//	BENCH rps=... p50_us=... p99_us=... requests=... non2xx=... errors=...
//
// non2xx counts answers that are not OK, errors counts failed calls. It talks
// to loopback addresses only and is bounded in time and count.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// checkRequest is the one CheckRequest every call sends, as Envoy would build it.
func checkRequest(host, path, token, policyKey string) *authv3.CheckRequest {
	headers := map[string]string{
		":authority": host, ":method": "GET", ":path": path, ":scheme": "https",
		"user-agent": "grpcload", "accept": "application/json", "x-forwarded-proto": "https", "x-request-id": "bench",
	}
	if token != "" {
		headers["authorization"] = "Bearer " + token
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "bench", Method: "GET", Host: host, Path: path, Scheme: "https", Protocol: "HTTP/1.1", Headers: headers,
		}},
	}}
	if policyKey != "" {
		req.Attributes.ContextExtensions = map[string]string{"jwtgate.dev/policy": policyKey}
	}
	return req
}

func main() {
	addr := flag.String("addr", "", "host:port of the ext_authz gRPC server (loopback only)")
	duration := flag.Duration("duration", 10*time.Second, "how long to send (at most 5m)")
	requests := flag.Int64("requests", 5_000_000, "stop after this many answers (at most 20,000,000)")
	concurrency := flag.Int("concurrency", 32, "calls in flight")
	conns := flag.Int("conns", 1, "HTTP/2 connections the calls share (Envoy uses few)")
	token := flag.String("token", "", "bearer token sent in the authorization header")
	policyKey := flag.String("policy", "", "context extension jwtgate.dev/policy (namespace/name); empty: none")
	host := flag.String("host", "app.bench.test", "the original request's host")
	path := flag.String("path", "/api/orders/7", "the original request's path")
	flag.Parse()

	h, _, err := net.SplitHostPort(*addr)
	if err != nil {
		log.Fatalf("-addr %q: %v", *addr, err)
	}
	if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
		log.Fatalf("-addr %q: only loopback addresses (127.0.0.1, ::1) are allowed", *addr)
	}
	if *duration <= 0 || *duration > 5*time.Minute || *requests <= 0 || *requests > 20_000_000 || *concurrency <= 0 || *concurrency > 4096 || *conns <= 0 || *conns > 64 {
		log.Fatal("-duration must be in (0, 5m], -requests in (0, 20,000,000], -concurrency in (0, 4096], -conns in (0, 64]")
	}

	req := checkRequest(*host, *path, *token, *policyKey)

	clients := make([]authv3.AuthorizationClient, *conns)
	for i := range clients {
		cc, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			log.Fatal(err)
		}
		defer func() { _ = cc.Close() }()
		clients[i] = authv3.NewAuthorizationClient(cc)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var sent, notOK, failed atomic.Int64
	lat := make([][]uint32, *concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w%len(clients)]
			for ctx.Err() == nil && sent.Add(1) <= *requests {
				t0 := time.Now()
				resp, err := c.Check(ctx, req)
				d := time.Since(t0)
				switch {
				case err != nil:
					if ctx.Err() != nil {
						return // the deadline cut this call: not an answer
					}
					failed.Add(1)
				case resp.GetStatus().GetCode() != 0:
					notOK.Add(1)
				}
				lat[w] = append(lat[w], uint32(min(d.Microseconds(), 1<<31))) //nolint:gosec // G115: capped at 2^31 just before
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	if len(all) == 0 {
		fmt.Fprintln(os.Stderr, "grpcload: no answers")
		os.Exit(1)
	}
	slices.Sort(all)
	pct := func(p float64) uint32 { return all[min(len(all)-1, int(float64(len(all))*p))] }
	fmt.Printf("BENCH rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d errors=%d\n",
		float64(len(all))/elapsed.Seconds(), pct(0.50), pct(0.99), len(all), notOK.Load(), failed.Load())
}
