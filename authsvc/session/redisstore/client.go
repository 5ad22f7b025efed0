package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeouts of every mode: fail fast while Redis is away (sign-in answers 503
// at once); one retry covers the pooled connections a restart or a failover
// left dead.
const (
	dialTimeout = 2 * time.Second
	ioTimeout   = 2 * time.Second
)

// newClient makes the go-redis client of a target: a Client (single), a
// failover Client (sentinel: it asks the sentinels for the master and follows
// its moves) or a ClusterClient.
func newClient(t Target) redis.UniversalClient {
	// A WAIT is read within the read timeout of its pipeline.
	ioTimeout := max(ioTimeout, t.WaitTimeout+time.Second)
	var tlsConf *tls.Config
	if t.TLS {
		// ServerName is left empty: crypto/tls checks each server's certificate
		// against the host it dials (masters move; cluster nodes are many).
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	switch t.Mode {
	case ModeSentinel:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:       t.MasterName,
			SentinelAddrs:    t.Addrs,
			SentinelUsername: t.SentinelUsername,
			SentinelPassword: t.SentinelPassword,
			Username:         t.Username,
			Password:         t.Password,
			DB:               t.DB,
			TLSConfig:        tlsConf,
			ClientName:       "jwtgate",
			DialTimeout:      dialTimeout,
			ReadTimeout:      ioTimeout,
			WriteTimeout:     ioTimeout,
			MaxRetries:       1,
			DialerRetries:    1,
			DisableIdentity:  true, // CLIENT SETINFO is not in every Redis
		})
	case ModeCluster:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:           t.Addrs,
			Username:        t.Username,
			Password:        t.Password,
			TLSConfig:       tlsConf,
			ClientName:      "jwtgate",
			DialTimeout:     dialTimeout,
			ReadTimeout:     ioTimeout,
			WriteTimeout:    ioTimeout,
			MaxRetries:      1,
			DialerRetries:   1,
			DisableIdentity: true,
		})
	}
	ro := *t.single
	ro.Password = t.Password
	ro.DialTimeout = cmpDuration(ro.DialTimeout, dialTimeout)
	ro.ReadTimeout = cmpDuration(ro.ReadTimeout, ioTimeout)
	ro.WriteTimeout = cmpDuration(ro.WriteTimeout, ioTimeout)
	if ro.MaxRetries == 0 {
		ro.MaxRetries = 1
	}
	if ro.DialerRetries == 0 {
		ro.DialerRetries = 1
	}
	if ro.ClientName == "" {
		ro.ClientName = "jwtgate"
	}
	ro.DisableIdentity = true
	return redis.NewClient(&ro)
}

// cmpDuration is v, or def when v is unset (0). A negative v (go-redis: no
// timeout) is kept.
func cmpDuration(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// nodeFor returns the client of the server that holds key: the client itself
// outside a cluster, the master of key's slot in one. A WAIT must run on the
// connection of the write it waits for, so an end and its WAIT go to this
// client in one pipeline.
func (s *Store) nodeFor(ctx context.Context, key string) (*redis.Client, error) {
	switch c := s.rdb.(type) {
	case *redis.Client:
		return c, nil
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, key)
	}
	return nil, fmt.Errorf("redis client %T", s.rdb)
}

// errNoReplica is the error of an end that no replica confirmed in time.
var errNoReplica = errors.New("no replica confirmed the end of the session in time")

// runEnding runs a script that ends sessions of a policy. In the
// high-availability modes it then writes the policy's end mark and sends WAIT
// on the same connection: the end is acknowledged only when WaitReplicas
// replicas hold it (replication is asynchronous: an end a master acknowledged
// and lost by dying a moment later would bring the session back on the
// promoted replica). The mark makes WAIT cover everything the master had
// done, so a retried end that finds nothing left to end (the first try ended
// it, and its WAIT failed) is acknowledged only once the first try's end is
// on a replica too. When fewer replicas confirm within WaitTimeout the end
// stays done on the master, and the caller gets the error (ErrUnavailable:
// 503, the client tries again). Outside those modes it is script.Run. A nil
// script only marks and waits (an end found by Rotate).
func (s *Store) runEnding(ctx context.Context, policy string, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	if s.target.WaitReplicas <= 0 {
		if script == nil {
			return redis.NewCmdResult(nil, nil)
		}
		return script.Run(ctx, s.rdb, keys, args...)
	}
	mark := s.prefix(policy) + "e"
	node, err := s.nodeFor(ctx, mark)
	if err != nil {
		return redis.NewCmdResult(nil, err)
	}
	run := func(eval func(p redis.Pipeliner) *redis.Cmd) (*redis.Cmd, *redis.Cmd) {
		var cmd *redis.Cmd
		var set *redis.StatusCmd
		var wait *redis.Cmd
		// Each command's own error is read below; Pipelined's is the first of them.
		_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			if script != nil {
				cmd = eval(p)
			}
			set = p.Set(ctx, mark, s.now().UnixMilli(), 24*time.Hour)
			wait = p.Do(ctx, "WAIT", s.target.WaitReplicas, s.target.WaitTimeout.Milliseconds())
			return nil
		})
		switch {
		case cmd == nil:
			cmd = redis.NewCmdResult(nil, set.Err())
		case cmd.Err() == nil && set.Err() != nil:
			cmd = redis.NewCmdResult(cmd.Val(), set.Err())
		}
		return cmd, wait
	}
	cmd, wait := run(func(p redis.Pipeliner) *redis.Cmd { return script.EvalSha(ctx, p, keys, args...) })
	if err := cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		cmd, wait = run(func(p redis.Pipeliner) *redis.Cmd { return script.Eval(ctx, p, keys, args...) })
	}
	if err := cmd.Err(); err != nil {
		if cc, ok := s.rdb.(*redis.ClusterClient); ok && isMoved(err) {
			// The slot moved (resharding, failover): learn the new layout, so
			// that the client's next try goes to the right node.
			cc.ReloadState(ctx)
		}
		return cmd
	}
	n, err := wait.Int64()
	switch {
	case err != nil:
		cmd.SetErr(fmt.Errorf("WAIT: %w", err))
	case n < int64(s.target.WaitReplicas):
		cmd.SetErr(fmt.Errorf("%w (%d of %d within %s)", errNoReplica, n, s.target.WaitReplicas, s.target.WaitTimeout))
	}
	return cmd
}

func isMoved(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ") || strings.HasPrefix(msg, "CLUSTERDOWN")
}
