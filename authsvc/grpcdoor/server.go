// Package grpcdoor is the Envoy ext_authz gRPC door:
// envoy.service.auth.v3.Authorization/Check on its own listener
// (--grpc-bind-address), with grpc.health.v1 beside it, bounded in message
// size, streams and client pings, and drained on SIGTERM together with the
// HTTP listener.
package grpcdoor

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// Limits of the gRPC listener. A CheckRequest carries every header of the
// original request (Envoy's own limit is 60 KiB of headers by default), its
// path and host, and no body unless the proxy is configured to send one.
const (
	// MaxRecvMsgSize bounds one CheckRequest. A larger one is refused by grpc
	// (RESOURCE_EXHAUSTED) before any of it is read into a message, and Envoy
	// answers its status_on_error (403 unless configured otherwise).
	MaxRecvMsgSize = 128 << 10
	// MaxSendMsgSize bounds one answer: a few forwarded headers at most.
	MaxSendMsgSize = 64 << 10
	// MaxHeaderListSize bounds the gRPC metadata (HTTP/2 headers) of a call;
	// Envoy sends a handful.
	MaxHeaderListSize = 16 << 10
	// MaxConcurrentStreams bounds the calls in flight on one connection. Envoy
	// multiplexes its checks over few connections, so this is generous.
	MaxConcurrentStreams = 1024
)

// ServiceName is the name Envoy calls and grpc.health.v1 reports on.
const ServiceName = "envoy.service.auth.v3.Authorization"

// Server is the gRPC listener of the ext_authz door: Authorization/Check and
// grpc.health.v1 on one port, plaintext HTTP/2 (h2c), as Envoy's gRPC client
// speaks it inside a cluster.
type Server struct {
	grpc   *grpc.Server
	health *health.Server
	log    *slog.Logger
}

// NewServer returns the listener's server with check registered. It is not
// serving until Serve.
func NewServer(check authv3.AuthorizationServer, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		grpc: grpc.NewServer(
			grpc.MaxRecvMsgSize(MaxRecvMsgSize),
			grpc.MaxSendMsgSize(MaxSendMsgSize),
			grpc.MaxHeaderListSize(MaxHeaderListSize),
			grpc.MaxConcurrentStreams(MaxConcurrentStreams),
			// A connection must finish its HTTP/2 handshake quickly.
			grpc.ConnectionTimeout(10*time.Second),
			// Clients may ping, but not more often than every 10 s (a client
			// that does gets GOAWAY, ENHANCE_YOUR_CALM): pings cost a write each.
			grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
				MinTime:             10 * time.Second,
				PermitWithoutStream: true,
			}),
			// Idle connections close after 15 minutes; the server pings a quiet
			// connection after 2 minutes and drops it when no answer comes in
			// 20 s, so a vanished proxy does not hold a connection.
			grpc.KeepaliveParams(keepalive.ServerParameters{
				MaxConnectionIdle: 15 * time.Minute,
				Time:              2 * time.Minute,
				Timeout:           20 * time.Second,
			}),
		),
		health: health.NewServer(),
		log:    log,
	}
	authv3.RegisterAuthorizationServer(s.grpc, check)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	return s
}

// Serve answers on ln until Stop; health reports SERVING for "" and
// ServiceName meanwhile.
func (s *Server) Serve(ln net.Listener) error {
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	err := s.grpc.Serve(ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Drain reports NOT_SERVING on health (so health-checking proxies stop
// sending), waits delay, then stops accepting connections and lets calls in
// flight finish within timeout; after it, any call left is cut.
func (s *Server) Drain(delay, timeout time.Duration) {
	s.health.Shutdown()
	if delay > 0 {
		time.Sleep(delay)
	}
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		// Health Watch streams and stuck calls never end on their own.
		s.log.Warn("grpc: calls still open after the shutdown timeout; closing them", "timeout", timeout)
		s.grpc.Stop()
		<-done
	}
}

// Run serves on addr until ctx ends, then drains (see Drain).
func (s *Server) Run(ctx context.Context, ln net.Listener, delay, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.Drain(delay, timeout)
	return <-errc
}
