package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/authsvc/oidc"
	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// Defaults of AuthPolicyReconciler's optional fields.
const (
	DefaultJWKSWait       = 2 * time.Second
	jwksRetryMin          = 5 * time.Second
	jwksRetryMax          = 5 * time.Minute
	maxConditionMessage   = 4096
	leaderOnlyExplanation = "only the leader writes status"
)

// AuthPolicyReconciler compiles each AuthPolicy, with the Secrets it references,
// into this replica's policy.Store, and reports the outcome in status.
//
// Many replicas: every replica runs this reconciler (the controller does not need
// leader election) and publishes into its own Store, so every replica serves
// decisions from its own informers. Status and events are written only by the
// replica that holds the leader lease (Leader.Leading()): the others compute the
// same status and drop it. Each time a replica wins the lease it reconciles every
// policy once more, so that status left stale while no one led is written.
type AuthPolicyReconciler struct {
	// Client reads AuthPolicies from the cache and patches their status.
	Client client.Client
	// SecretReader reads referenced Secrets straight from the API server: the cache
	// holds only Secret metadata (see SetupWithManager).
	SecretReader client.Reader
	Store        *policy.Store
	Remotes      *keys.Remotes
	// Providers keep the discovery documents of the OpenID providers that
	// policies with spec.login.oidc sign people in at (the sign-in pages use
	// the same ones). Nil: OIDCDiscoveryFailed is never reported.
	Providers  *oidc.Providers
	TokenCache *policy.TokenCache
	Recorder   events.EventRecorder
	// Leader says whether this replica leads (a *LeaderElector, which runs on
	// every replica and never ends the process). Nil: always leads. When it is
	// also an ElectionNotifier, every election won reconciles every policy.
	Leader Leader
	// Replicas is how many replicas serve decisions (the chart passes its
	// replicaCount); with more than one and no SharedSessions, policies with login
	// get SessionsShared=False.
	Replicas int
	// SharedSessions is true when sessions live in a store all replicas share.
	SharedSessions bool
	// Proxy, when set (--proxy-check), holds the findings about the proxy
	// objects that point at each policy; status shows them (ProxyConfigured,
	// status.proxyFindings). Nil: status has neither.
	Proxy *ProxyChecker
	// JWKSWait is how long a reconcile waits for a jwksURL's first fetch before
	// reporting JWKSUnreachable, and for an OpenID provider's first discovery
	// before reporting OIDCDiscoveryFailed. Default DefaultJWKSWait.
	JWKSWait time.Duration

	requeue   chan policyEvent
	mu        sync.Mutex
	retries   map[string]int    // consecutive JWKSUnreachable or OIDCDiscoveryFailed reconciles, by policy key
	announced map[string]string // the Ready status/reason last sent as an event, by policy key
	ready     readiness

	statusPatches atomic.Int64
}

// Reconcile fetches the policy, publishes it (or removes it), and writes status
// once, in a deferred patch, only when it changed and only on the leader.
//
// A policy counts for readiness (ReadyCheck) only once it has been published or
// found invalid, or is gone: a reconcile that fails (API server, RBAC) leaves it
// pending, so a new replica never reports ready with a policy it does not serve.
func (r *AuthPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	key := req.String()

	ap := &v1alpha1.AuthPolicy{}
	if err := r.Client.Get(ctx, req.NamespacedName, ap); err != nil {
		if apierrors.IsNotFound(err) {
			r.reconcileDelete(ctx, key)
			r.ready.reconciled(key)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !ap.DeletionTimestamp.IsZero() {
		// jwtgate keeps no finalizer; another one may hold the object. A policy on
		// its way out stops allowing now.
		r.reconcileDelete(ctx, key)
		r.ready.reconciled(key)
		return ctrl.Result{}, nil
	}

	before := ap.DeepCopy()
	defer func() {
		if err := r.patchStatus(ctx, before, ap); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	return r.reconcileNormal(ctx, ap)
}

// reconcileNormal compiles ap and hands the result to the store's one publish
// path (policy.Store.Publish), which keeps the last good version when it does
// not compile; it records the outcome in ap.Status and never writes to the API
// server.
func (r *AuthPolicyReconciler) reconcileNormal(ctx context.Context, ap *v1alpha1.AuthPolicy) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	key := ap.Namespace + "/" + ap.Name

	secrets, err := r.readSecrets(ctx, ap)
	if err != nil {
		// Not a problem of the policy (API server down, RBAC): keep serving what
		// we have, leave status as it is, retry with the workqueue's backoff.
		return ctrl.Result{}, err
	}
	compiled, err := policy.Compile(policy.Input{Policy: ap, Secrets: secrets, Remotes: r.Remotes, Cache: r.TokenCache})
	var ce *policy.CompileError
	if err != nil && (!errors.As(err, &ce) || len(ce.Problems) == 0) {
		return ctrl.Result{}, err
	}
	out := r.Store.Publish(policy.Version{Key: key, Policy: compiled, Err: err, Secrets: secrets, Since: ap.CreationTimestamp.Time})[0]
	r.ready.reconciled(key)
	// From here on, status describes this generation.
	ap.Status.ObservedGeneration = ap.Generation
	r.setSessionsCondition(ap)
	r.setProxyCondition(ap)
	if out.Serving == nil || !slices.Equal(out.HostsBefore, out.Serving.Hosts) {
		r.requeueHostNeighbours(ctx, key, append(slices.Clone(out.HostsBefore), hostsOf(out.Serving)...))
	}
	if ce != nil {
		// Invalid input: no hot requeue. A change to the policy or a Secret it
		// references triggers the next reconcile.
		if len(out.Dropped) > 0 {
			log.Info("policy does not compile; the last good version serves without what its Secrets no longer hold",
				"problems", ce.Error(), "dropped", strings.Join(out.Dropped, "; "))
		} else {
			log.Info("policy does not compile; not published", "problems", ce.Error())
		}
		r.setReady(ap, out)
		return ctrl.Result{}, nil
	}
	setWarningsCondition(ap, compiled.Warnings())
	log.V(1).Info("policy published", "generation", ap.Generation)

	if out.Reason == v1alpha1.ReasonJWKSUnreachable {
		if unloaded := r.waitJWKS(ctx, ap); len(unloaded) > 0 {
			out.Message = strings.Join(unloaded, "; ") + "; the policy is published and refuses tokens those keys would verify until they load"
			r.setReady(ap, out)
			return ctrl.Result{RequeueAfter: r.jwksBackoff(key)}, nil
		}
		out = r.Store.Outcome(key)
	}
	if out.Ready {
		if why := r.waitOIDC(ctx, out.Serving); why != "" {
			out.Ready, out.Reason, out.Message = false, v1alpha1.ReasonOIDCDiscoveryFailed, why
			r.setReady(ap, out)
			return ctrl.Result{RequeueAfter: r.jwksBackoff(key)}, nil
		}
	}
	r.resetJWKSBackoff(key)
	r.setReady(ap, out)
	return ctrl.Result{}, nil
}

// reconcileDelete removes a policy that no longer exists: its decisions deny at
// once (403, no policy).
func (r *AuthPolicyReconciler) reconcileDelete(ctx context.Context, key string) {
	hosts := r.Store.Remove(key)
	r.resetJWKSBackoff(key)
	r.mu.Lock()
	delete(r.announced, key)
	r.mu.Unlock()
	ctrl.LoggerFrom(ctx).Info("policy removed from the decision service")
	r.requeueHostNeighbours(ctx, key, hosts)
}

// readSecrets reads every Secret ap references, from the API server. A Secret
// that does not exist is left out of the map; Compile names the field.
func (r *AuthPolicyReconciler) readSecrets(ctx context.Context, ap *v1alpha1.AuthPolicy) (map[string]*corev1.Secret, error) {
	out := map[string]*corev1.Secret{}
	for _, name := range referencedSecrets(ap) {
		s := &corev1.Secret{}
		err := r.SecretReader.Get(ctx, types.NamespacedName{Namespace: ap.Namespace, Name: name}, s)
		switch {
		case err == nil:
			out[name] = s
		case apierrors.IsNotFound(err):
		default:
			return nil, fmt.Errorf("reading secret %s/%s: %w", ap.Namespace, name, err)
		}
	}
	return out, nil
}

// waitJWKS waits briefly for the first fetch of each jwksURL and describes the
// ones that have not loaded.
func (r *AuthPolicyReconciler) waitJWKS(ctx context.Context, ap *v1alpha1.AuthPolicy) []string {
	if ap.Spec.JWT == nil || r.Remotes == nil {
		return nil
	}
	wait := r.JWKSWait
	if wait <= 0 {
		wait = DefaultJWKSWait
	}
	var unloaded []string
	for i, ks := range ap.Spec.JWT.Keys {
		if ks.JWKSURL == "" {
			continue
		}
		remote, err := r.Remotes.Get(ks.JWKSURL)
		if err != nil { // Compile has already refused such a URL
			continue
		}
		if remote.Current() != nil {
			continue
		}
		// Wait for a first fetch only while none has failed yet: once one has,
		// waiting again on every reconcile would hold a worker for nothing
		// (and with many policies on one dead IdP, starve the queue).
		if remote.LastError() == nil {
			wctx, cancel := context.WithTimeout(ctx, wait)
			err = remote.WaitReady(wctx)
			cancel()
			if err == nil {
				continue
			}
		}
		why := "no answer yet"
		if last := remote.LastError(); last != nil {
			why = last.Error()
		}
		unloaded = append(unloaded, fmt.Sprintf("spec.jwt.keys[%d].jwksURL: keys from %s have not loaded: %s", i, ks.JWKSURL, why))
	}
	return unloaded
}

// waitOIDC waits briefly for the first discovery of p's OpenID provider and,
// when its discovery document (or its keys) has not loaded, says so for the
// Ready condition: the issuer URL and the failure, never a response body. ""
// when p signs no one in at a provider, or the provider has loaded (a later
// failure keeps the last good document, so it stays "").
func (r *AuthPolicyReconciler) waitOIDC(ctx context.Context, p *policy.Policy) string {
	if r.Providers == nil || p == nil || p.Login == nil || p.Login.OIDC == nil {
		return ""
	}
	issuer := p.Login.OIDC.IssuerURL
	prov := r.Providers.Get(issuer)
	if prov.Loaded() {
		return ""
	}
	// As for jwksURL: wait only while no failure is known, so that many
	// policies on one dead provider do not each hold a worker on every retry.
	if prov.Failure() == nil {
		wait := r.JWKSWait
		if wait <= 0 {
			wait = DefaultJWKSWait
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		err := prov.WaitReady(wctx)
		cancel()
		if err == nil {
			return ""
		}
	}
	why := "no answer yet"
	if err := prov.Failure(); err != nil {
		why = err.Error()
	}
	return fmt.Sprintf("spec.login.oidc.issuerURL: the OpenID provider %s has not loaded: %s; the policy is published and decisions and existing sessions go on, but new sign-ins at the provider answer 503 until its discovery document loads", issuer, why)
}

// providerChanged requeues the published policies that sign people in at
// issuer, whose provider has just loaded, failed or recovered
// (oidc.Providers.Subscribe). It never blocks the provider's goroutine.
func (r *AuthPolicyReconciler) providerChanged(issuer string) {
	if r.requeue == nil {
		return
	}
	for _, p := range r.Store.Load().Policies() {
		if p.Login == nil || p.Login.OIDC == nil || p.Login.OIDC.IssuerURL != issuer {
			continue
		}
		ev := policyEvent{Object: &v1alpha1.AuthPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}}}
		select {
		case r.requeue <- ev:
		default: // the queue is full: the backoff's requeue comes anyway
		}
	}
}

func (r *AuthPolicyReconciler) jwksBackoff(key string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.retries[key]
	r.retries[key] = n + 1
	return min(jwksRetryMin<<min(n, 10), jwksRetryMax)
}

func (r *AuthPolicyReconciler) resetJWKSBackoff(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.retries, key)
}

// setReady sets the Ready condition from a publication's outcome.
func (r *AuthPolicyReconciler) setReady(ap *v1alpha1.AuthPolicy, out policy.Outcome) {
	status, reason, msg := metav1.ConditionFalse, out.Reason, out.Message
	if out.Ready {
		status, msg = metav1.ConditionTrue, fmt.Sprintf("generation %d is serving", ap.Generation)
	}
	if len(msg) > maxConditionMessage {
		msg = msg[:maxConditionMessage-3] + "..."
	}
	meta.SetStatusCondition(&ap.Status.Conditions, metav1.Condition{
		Type:               v1alpha1.ConditionReady,
		Status:             status,
		Reason:             reason,
		Message:            msg,
		ObservedGeneration: ap.Generation,
	})
}

// setWarningsCondition sets the Warnings condition from the warnings of the
// compiled policy: True with the first warning's reason and every warning in
// the message, or False when there are none.
func setWarningsCondition(ap *v1alpha1.AuthPolicy, warnings []policy.Problem) {
	c := metav1.Condition{Type: v1alpha1.ConditionWarnings, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonNoWarnings,
		Message: "nothing to warn about", ObservedGeneration: ap.Generation}
	if len(warnings) > 0 {
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, warnings[0].Reason, policy.ProblemsMessage(warnings)
		if len(c.Message) > maxConditionMessage {
			c.Message = c.Message[:maxConditionMessage-3] + "..."
		}
	}
	meta.SetStatusCondition(&ap.Status.Conditions, c)
}

// setSessionsCondition warns, on policies that sign people in, when sessions live
// in each replica's memory while several replicas serve: a refresh token issued by
// one replica is unknown to the others. One replica, or a shared store: no warning.
func (r *AuthPolicyReconciler) setSessionsCondition(ap *v1alpha1.AuthPolicy) {
	switch {
	case ap.Spec.Login == nil:
		meta.RemoveStatusCondition(&ap.Status.Conditions, v1alpha1.ConditionSessionsShared)
	case r.SharedSessions:
		meta.SetStatusCondition(&ap.Status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionSessionsShared, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonSharedStore,
			Message: "sessions live in the shared store: every replica can refresh them", ObservedGeneration: ap.Generation,
		})
	case r.Replicas > 1:
		meta.SetStatusCondition(&ap.Status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionSessionsShared, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonPerReplica,
			Message:            fmt.Sprintf("%d replicas keep sessions in their own memory: a refresh token works only on the replica that issued it, so people sign in again when a request lands elsewhere; run jwtgate with --redis-url, or one replica", r.Replicas),
			ObservedGeneration: ap.Generation,
		})
	default:
		meta.RemoveStatusCondition(&ap.Status.Conditions, v1alpha1.ConditionSessionsShared)
	}
}

// patchStatus writes ap's status when it differs from before, and records an
// event when Ready changes. Only the leader writes.
func (r *AuthPolicyReconciler) patchStatus(ctx context.Context, before, ap *v1alpha1.AuthPolicy) error {
	if !r.leading() {
		return nil
	}
	if equality.Semantic.DeepEqual(before.Status, ap.Status) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, ap, client.MergeFrom(before)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patching status of AuthPolicy %s/%s: %w", ap.Namespace, ap.Name, err)
	}
	r.statusPatches.Add(1)
	r.recordTransition(before, ap)
	return nil
}

func (r *AuthPolicyReconciler) recordTransition(before, ap *v1alpha1.AuthPolicy) {
	if r.Recorder == nil {
		return
	}
	was := meta.FindStatusCondition(before.Status.Conditions, v1alpha1.ConditionReady)
	now := meta.FindStatusCondition(ap.Status.Conditions, v1alpha1.ConditionReady)
	if now == nil || (was != nil && was.Status == now.Status && was.Reason == now.Reason) {
		return
	}
	// The cache may not yet hold our last patch when the next reconcile runs, so
	// "before" can be stale: remember what was announced, and announce it once.
	key := ap.Namespace + "/" + ap.Name
	announced := string(now.Status) + "/" + now.Reason
	r.mu.Lock()
	if r.announced[key] == announced {
		r.mu.Unlock()
		return
	}
	r.announced[key] = announced
	r.mu.Unlock()
	if now.Status == metav1.ConditionTrue {
		r.Recorder.Eventf(ap, nil, corev1.EventTypeNormal, now.Reason, "Publish", "%s", now.Message)
		return
	}
	r.Recorder.Eventf(ap, nil, corev1.EventTypeWarning, now.Reason, "Reconcile", "%s", now.Message)
}

func (r *AuthPolicyReconciler) leading() bool {
	return r.Leader == nil || r.Leader.Leading()
}

// StatusPatches counts the status patches this reconciler wrote.
func (r *AuthPolicyReconciler) StatusPatches() int64 { return r.statusPatches.Load() }

func hostsOf(p *policy.Policy) []string {
	if p == nil {
		return nil
	}
	return p.Hosts
}
