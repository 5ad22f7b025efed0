// Package testredis starts real Redis topologies on loopback for the tests of
// the high-availability session stores: a Sentinel group (one master, its
// replicas, three sentinels) and a Redis Cluster made with
// `redis-cli --cluster create`. Every process runs on free 127.0.0.1 ports in
// a test's temporary folder and is stopped when the test ends. A missing
// redis-server, redis-sentinel or redis-cli fails the test with the command
// that installs it (make test installs them): nothing skips.
package testredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtgate/jwtgate/internal/testproc"
)

// InstallHint says how to get the programs.
const InstallHint = "redis-server, redis-sentinel and redis-cli are needed by this test: install them with\n" +
	"\tsudo hack/install-deps.sh redis-server redis-sentinel\n" +
	"(or: sudo apt-get update && sudo apt-get install -y --no-install-recommends redis-server redis-sentinel redis-tools;\n" +
	"make test does it; the test starts its own servers on free loopback ports and needs no running service)"

func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing: %v\n%s", name, err, InstallHint)
	}
	return p
}

// Server is one redis-server (or redis-sentinel) process.
type Server struct {
	Port int
	Dir  string
	proc *testproc.Process
}

// Addr is 127.0.0.1:Port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Client is a go-redis client of this server alone, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
		MaxRetries: -1, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill ends the server with SIGKILL (nothing flushed, nothing said to its
// replicas) and waits until it is gone.
func (s *Server) Kill() {
	_ = syscall.Kill(s.proc.Cmd.Process.Pid, syscall.SIGKILL)
	err := <-s.proc.Done
	s.proc.Done <- err
}

func freePort(t *testing.T) int {
	_, p, _ := net.SplitHostPort(testproc.FreeAddr(t))
	n, _ := strconv.Atoi(p)
	return n
}

// start runs bin with a config file (redis-sentinel rewrites it) and the
// given lines, and waits until it answers PING.
func start(t *testing.T, bin, dir, name string, lines ...string) *Server {
	t.Helper()
	s := &Server{Port: freePort(t), Dir: filepath.Join(dir, name)}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := append([]string{
		"port " + strconv.Itoa(s.Port), "bind 127.0.0.1", "daemonize no", "dir " + s.Dir,
		`logfile ""`, "loglevel notice", `save ""`, "appendonly no",
	}, lines...)
	cf := filepath.Join(s.Dir, name+".conf")
	if err := os.WriteFile(cf, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.proc = testproc.Start(t, filepath.Join(dir, name+".log"), bin, cf)
	c := s.Client(t)
	testproc.WaitFor(t, s.proc, name+" to answer PING", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err() == nil
	})
	return s
}

// fast replication: a replica's first sync streams at once, without a delay
// for others to join.
var replicationLines = []string{"repl-diskless-sync yes", "repl-diskless-sync-delay 0", "repl-ping-replica-period 1"}

// Sentinel is a master, its replicas and three sentinels watching it.
type Sentinel struct {
	Name      string
	Master    *Server // the first master; after a failover see MasterAddr
	Replicas  []*Server
	Sentinels []*Server
}

// Timing of the sentinels: a master that does not answer for DownAfter is
// down, and the failover starts when two of three agree.
const (
	DownAfter       = 1000 * time.Millisecond
	FailoverTimeout = 3000 * time.Millisecond
)

// StartSentinel starts one master, replicas replicas and three sentinels, and
// waits until every replica is in sync and every sentinel knows them all.
func StartSentinel(t *testing.T, replicas int) *Sentinel {
	t.Helper()
	srv := lookPath(t, "redis-server")
	sen := lookPath(t, "redis-sentinel")
	dir := t.TempDir()
	g := &Sentinel{Name: "jwtgate-test"}
	g.Master = start(t, srv, dir, "master", replicationLines...)
	for i := range replicas {
		lines := append([]string{"replicaof 127.0.0.1 " + strconv.Itoa(g.Master.Port)}, replicationLines...)
		g.Replicas = append(g.Replicas, start(t, srv, dir, "replica"+strconv.Itoa(i+1), lines...))
	}
	for i := range 3 {
		g.Sentinels = append(g.Sentinels, start(t, sen, dir, "sentinel"+strconv.Itoa(i+1),
			"sentinel resolve-hostnames no",
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", g.Name, g.Master.Port),
			fmt.Sprintf("sentinel down-after-milliseconds %s %d", g.Name, DownAfter.Milliseconds()),
			fmt.Sprintf("sentinel failover-timeout %s %d", g.Name, FailoverTimeout.Milliseconds()),
			fmt.Sprintf("sentinel parallel-syncs %s %d", g.Name, max(1, replicas))))
	}
	m := g.Master.Client(t)
	within(t, 20*time.Second, "the replicas to sync and the sentinels to see them", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if n, err := m.Do(ctx, "WAIT", 0, 0).Int(); err != nil || n < replicas {
			return false
		}
		for _, s := range g.Sentinels {
			c := s.Client(t)
			r, err := c.Do(ctx, "SENTINEL", "replicas", g.Name).Slice()
			if err != nil || len(r) < replicas {
				return false
			}
			o, err := c.Do(ctx, "SENTINEL", "sentinels", g.Name).Slice()
			if err != nil || len(o) < 2 {
				return false
			}
		}
		return true
	})
	return g
}

// URL is the --redis-url of the group.
func (g *Sentinel) URL(params string) string {
	var hosts []string
	for _, s := range g.Sentinels {
		hosts = append(hosts, s.Addr())
	}
	u := "redis-sentinel://" + strings.Join(hosts, ",") + "/" + g.Name
	if params != "" {
		u += "?" + params
	}
	return u
}

// MasterAddr asks the sentinels which server is the master now.
func (g *Sentinel) MasterAddr(t *testing.T) string {
	t.Helper()
	for _, s := range g.Sentinels {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := s.Client(t).Do(ctx, "SENTINEL", "get-master-addr-by-name", g.Name).StringSlice()
		cancel()
		if err == nil && len(r) == 2 {
			return net.JoinHostPort(r[0], r[1])
		}
	}
	return ""
}

// WaitReplicated waits until every replica of the master has acknowledged
// everything the master has written (as min-replicas would make a real
// deployment do before it is killed).
func WaitReplicated(t *testing.T, master *Server, replicas int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// WAIT on a connection that has just written covers everything before.
	conn := master.Client(t).Conn()
	defer func() { _ = conn.Close() }()
	if err := conn.Set(ctx, "testredis:replicated", time.Now().UnixNano(), time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Do(ctx, "WAIT", replicas, 5000).Int()
	if err != nil || n < replicas {
		t.Fatalf("WAIT for %d replicas: %d, %v", replicas, n, err)
	}
}

// Cluster is a Redis Cluster.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts masters*(1+replicasEach) nodes and joins them with
// redis-cli --cluster create, then waits until every node says the cluster is
// ok and every replica is in sync.
func StartCluster(t *testing.T, masters, replicasEach int) *Cluster {
	t.Helper()
	srv := lookPath(t, "redis-server")
	cli := lookPath(t, "redis-cli")
	dir := t.TempDir()
	c := &Cluster{}
	var addrs []string
	for i := range masters * (1 + replicasEach) {
		name := "node" + strconv.Itoa(i+1)
		lines := append([]string{"cluster-enabled yes", "cluster-config-file " + name + "-nodes.conf",
			"cluster-port " + strconv.Itoa(freePort(t)),
			// Generous: the test machine is busy, and no test here kills a
			// cluster node.
			"cluster-node-timeout 5000"}, replicationLines...)
		n := start(t, srv, dir, name, lines...)
		c.Nodes = append(c.Nodes, n)
		addrs = append(addrs, n.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicasEach), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	within(t, 30*time.Second, "every cluster node to say cluster_state:ok and its replicas to sync", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, n := range c.Nodes {
			nc := n.Client(t)
			info, err := nc.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
			repl, err := nc.Info(ctx, "replication").Result()
			if err != nil {
				return false
			}
			if strings.Contains(repl, "role:master") && !strings.Contains(repl, "connected_slaves:"+strconv.Itoa(replicasEach)) {
				return false
			}
			if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				return false
			}
		}
		return true
	})
	return c
}

// URL is the --redis-url of the cluster (every node as a seed).
func (c *Cluster) URL(params string) string {
	var hosts []string
	for _, n := range c.Nodes {
		hosts = append(hosts, n.Addr())
	}
	u := "redis-cluster://" + strings.Join(hosts, ",")
	if params != "" {
		u += "?" + params
	}
	return u
}

func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within %s", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
