package grpcdoor

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// serve runs s on a loopback port until the test ends and returns a client
// connection to it (plaintext HTTP/2, as Envoy's gRPC client dials a cluster
// without TLS).
func serve(t *testing.T, s *Server) (*grpc.ClientConn, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln, 0, 5*time.Second) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() {
		_ = conn.Close()
		stop()
	})
	return conn, stop
}

func TestHealth(t *testing.T) {
	conn, stop := serve(t, NewServer(authv3.UnimplementedAuthorizationServer{}, nil))
	hc := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", ServiceName} {
		resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("health %q: %v", svc, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v, want SERVING", svc, resp.GetStatus())
		}
	}
	if _, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "other.Service"}); status.Code(err) != codes.NotFound {
		t.Errorf("health of an unknown service: %v, want NotFound", err)
	}
	stop()
}

// A CheckRequest larger than MaxRecvMsgSize is refused by grpc before it is
// decoded (Envoy then answers its status_on_error, 403 by default).
func TestMessageSizeBounded(t *testing.T) {
	conn, _ := serve(t, NewServer(authv3.UnimplementedAuthorizationServer{}, nil))
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		Method: "GET", Host: "shop.example.com", Path: "/app", Headers: map[string]string{"x-big": strings.Repeat("a", MaxRecvMsgSize)},
	}}}}
	_, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), req)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a %d-byte request: %v, want ResourceExhausted", MaxRecvMsgSize, err)
	}
}

// blockingCheck holds each Check until release is closed.
type blockingCheck struct {
	authv3.UnimplementedAuthorizationServer
	started chan struct{}
	release chan struct{}
}

func (b *blockingCheck) Check(ctx context.Context, _ *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	b.started <- struct{}{}
	select {
	case <-b.release:
		return &authv3.CheckResponse{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// On SIGTERM (the context ending) health turns NOT_SERVING, no new connection
// is accepted, and a Check in flight still gets its answer.
func TestGracefulStop(t *testing.T) {
	b := &blockingCheck{started: make(chan struct{}, 1), release: make(chan struct{})}
	s := NewServer(b, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln, 0, time.Minute) }()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()

	answer := make(chan error, 1)
	go func() {
		resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), &authv3.CheckRequest{})
		if err == nil && resp == nil {
			err = errors.New("no answer")
		}
		answer <- err
	}()
	<-b.started
	cancel()

	// The listener closes: a new connection is refused.
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		_ = c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a Check was in flight", err)
	default:
	}
	if resp, _ := s.health.Check(context.Background(), &healthpb.HealthCheckRequest{}); resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health while draining: %v, want NOT_SERVING", resp.GetStatus())
	}
	close(b.release)
	if err := <-answer; err != nil {
		t.Errorf("the Check in flight: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// A call that never finishes is cut when the shutdown timeout passes, so that
// SIGTERM always ends the process.
func TestStopAfterTimeout(t *testing.T) {
	b := &blockingCheck{started: make(chan struct{}, 1), release: make(chan struct{})}
	s := NewServer(b, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln, 0, 50*time.Millisecond) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	answer := make(chan error, 1)
	go func() {
		_, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), &authv3.CheckRequest{})
		answer <- err
	}()
	<-b.started
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := <-answer; status.Code(err) != codes.Unavailable && status.Code(err) != codes.Canceled {
		t.Errorf("the cut call: %v, want Unavailable", err)
	}
}
