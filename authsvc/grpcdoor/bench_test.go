package grpcdoor

import (
	"context"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jwtgate/jwtgate/authsvc/door"
)

// BenchmarkCheck is one allowed Check as Envoy sends it (a cached token,
// three forwarded claims): what the gRPC door adds to grpc-go's own work.
func BenchmarkCheck(b *testing.B) {
	d := &Door{Checker: &door.Checker{Store: newStore(b), Metrics: door.NewMetrics(prometheus.NewRegistry())}}
	tok := token(b, gojwt.MapClaims{"sub": "alice", "roles": []string{"user"}, "email": "alice@example.com"})
	req := checkRequest("GET", "api.example.com", "/orders/7?x=1", map[string]string{
		"authorization": "Bearer " + tok, "accept": "*/*", "user-agent": "curl/8.5.0",
		"x-forwarded-proto": "https", "x-request-id": "5f0c9a3e-1b2c-4d5e-8f90-123456789abc",
	}, nil)
	resp, err := d.Check(context.Background(), req)
	if err != nil || resp.GetOkResponse() == nil {
		b.Fatalf("not allowed: %v %v", resp, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = d.Check(context.Background(), req)
	}
}
