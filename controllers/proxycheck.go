package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/proxycheck"
)

// The proxy objects the checker reads: Ingresses always, the other kinds when
// their CRDs are installed. Read only: the checker writes nothing but
// AuthPolicy status (through the reconciler) and events.
//
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch
// +kubebuilder:rbac:groups=gateway.envoyproxy.io,resources=securitypolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=traefik.io;traefik.containo.us,resources=middlewares,verbs=get;list;watch
// +kubebuilder:rbac:groups=security.istio.io,resources=authorizationpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get,resourceNames=istio

// optionalKind is a proxy kind whose CRD may or may not be installed; versions
// are tried in order and the first one served is watched (one only, so that
// no object is checked twice).
type optionalKind struct {
	group, kind string
	versions    []string
}

var optionalProxyKinds = []optionalKind{
	{"gateway.networking.k8s.io", "HTTPRoute", []string{"v1"}},
	{"gateway.envoyproxy.io", "SecurityPolicy", []string{"v1alpha1"}},
	{"traefik.io", "Middleware", []string{"v1alpha1"}},
	{"traefik.containo.us", "Middleware", []string{"v1alpha1"}},
	{"security.istio.io", "AuthorizationPolicy", []string{"v1", "v1beta1"}},
}

func (k optionalKind) String() string { return k.kind + "." + k.group }

// istioMesh is where Istio keeps its mesh config, with the extension
// providers an AuthorizationPolicy's CUSTOM action names.
var istioMesh = types.NamespacedName{Namespace: "istio-system", Name: "istio"}

// DefaultProxyCheckInterval is how often the checker looks for CRDs installed
// or removed since, and checks everything again (the mesh ConfigMap is not
// watched).
const DefaultProxyCheckInterval = 30 * time.Second

// Bounds of what the findings put into the API: status.proxyFindings'
// MaxItems and its fields' MaxLength, and an event's note (1 KiB).
const (
	maxProxyFindings = 20
	maxFindingField  = 320
	maxFindingText   = 1024
	maxEventNote     = 1024
)

// ProxyChecker reads the proxy objects that point at jwtgate, checks them
// against the AuthPolicies (package proxycheck), and keeps each policy's
// findings for the AuthPolicyReconciler, which puts them in status
// (ProxyConfigured, status.proxyFindings). It records an event on each proxy
// object whose findings change.
//
// Ingresses and AuthPolicies are watched through the manager's cache (and so
// limited to its namespaces). The optional kinds are looked for every
// Interval: an informer starts when a kind's CRD is served and stops when it is
// gone, so the controller starts cleanly without them and notices them
// installed later. It runs on every replica, so that a new leader has the
// findings at once; only the leader records events (and writes status).
type ProxyChecker struct {
	ProxyCheckOptions

	trigger  chan struct{}
	mu       sync.Mutex
	checked  bool                    // a pass has completed
	byPolicy map[string]proxyReport  // findings by policy key
	flagged  map[string]string       // object -> findings last announced
	active   map[string]optionalKind // optional kinds watched, with the version found
	absent   map[string]string       // optional kinds not watched -> why, as last logged
	passes   atomic.Int64
}

// ProxyCheckOptions are what a ProxyChecker reads, writes and reports to.
type ProxyCheckOptions struct {
	// Client lists Ingresses and AuthPolicies from the cache.
	Client client.Client
	// Reader reads the API server directly: whether an optional kind is
	// served and readable, and Istio's mesh ConfigMap.
	Reader client.Reader
	// Cache starts and stops the informers of the optional kinds.
	Cache cache.Cache
	// Namespaces limits the checker as the cache is limited (empty: all).
	Namespaces []string
	// Service is jwtgate's Service: what "points at jwtgate" means.
	Service proxycheck.Service
	// Interval between looks for CRDs; DefaultProxyCheckInterval when zero.
	Interval time.Duration
	// Recorder records events on the proxy objects (leader only).
	Recorder events.EventRecorder
	// Leader: nil means always leading.
	Leader Leader
	// Policies is told which policies' findings changed, to reconcile them.
	Policies *AuthPolicyReconciler
	// Log; default ctrl.Log.WithName("proxycheck").
	Log logr.Logger
}

// proxyReport is what status shows of one policy's findings.
type proxyReport struct {
	findings                []v1alpha1.ProxyFinding // the first maxProxyFindings
	errors, warnings, infos int                     // all of them
	pointing                []string                // the objects that answer with the policy
}

// NewProxyChecker makes a checker; add it to the manager, which runs Start.
func NewProxyChecker(o ProxyCheckOptions) *ProxyChecker {
	c := &ProxyChecker{
		ProxyCheckOptions: o,
		trigger:           make(chan struct{}, 1),
		byPolicy:          map[string]proxyReport{},
		flagged:           map[string]string{},
		active:            map[string]optionalKind{},
		absent:            map[string]string{},
	}
	if c.Interval <= 0 {
		c.Interval = DefaultProxyCheckInterval
	}
	if c.Log.GetSink() == nil {
		c.Log = ctrl.Log.WithName("proxycheck")
	}
	return c
}

// NeedLeaderElection: every replica checks, so that status is ready when it leads.
func (c *ProxyChecker) NeedLeaderElection() bool { return false }

// Passes counts the completed checks (for tests).
func (c *ProxyChecker) Passes() int64 { return c.passes.Load() }

// Watching lists the optional kinds watched now, as "Kind.group/version".
func (c *ProxyChecker) Watching() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, k := range c.active {
		out = append(out, k.String()+"/"+k.versions[0])
	}
	slices.Sort(out)
	return out
}

// report returns a policy's findings, and false until the first pass.
func (c *ProxyChecker) report(key string) (proxyReport, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byPolicy[key], c.checked
}

// Trigger asks for a pass soon; triggers while one is pending are one.
func (c *ProxyChecker) Trigger() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// Start watches Ingresses and AuthPolicies, then checks at once, on every
// change and every Interval (looking for the optional kinds first).
func (c *ProxyChecker) Start(ctx context.Context) error {
	// An informer the API server refuses would wait forever and log every
	// retry: say once what is missing, and look again every Interval.
	for said := false; ; {
		err := c.Reader.List(ctx, &networkingv1.IngressList{}, c.probeOptions()...)
		if err == nil {
			break
		}
		if apierrors.IsForbidden(err) && !said {
			c.Log.Error(err, "the proxy check cannot list Ingresses: grant get, list and watch on ingresses.networking.k8s.io (the chart does), or run with --proxy-check=false; trying again every interval", "interval", c.Interval)
			said = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.Interval):
		}
	}
	ing, err := c.Cache.GetInformer(ctx, &networkingv1.Ingress{})
	if err != nil {
		return fmt.Errorf("watching Ingresses for the proxy check: %w", err)
	}
	if _, err := ing.AddEventHandler(c.handler(true)); err != nil {
		return err
	}
	aps, err := c.Cache.GetInformer(ctx, &v1alpha1.AuthPolicy{})
	if err != nil {
		return fmt.Errorf("watching AuthPolicies for the proxy check: %w", err)
	}
	if _, err := aps.AddEventHandler(c.handler(false)); err != nil {
		return err
	}
	if !c.Cache.WaitForCacheSync(ctx) {
		return nil
	}
	tick := time.NewTicker(c.Interval)
	defer tick.Stop()
	look := true
	for {
		if look {
			c.syncKinds(ctx)
		}
		if err := c.pass(ctx); err != nil && ctx.Err() == nil {
			// The next change or tick tries again; status keeps the last findings.
			c.Log.Error(err, "checking the proxy objects")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			look = true
		case <-c.trigger:
			look = false
			// Changes that come in a burst (an apply of many objects) make
			// one pass: wait a little, and take the triggers of that time.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(min(c.Interval, maxPassDelay)):
			}
			select {
			case <-c.trigger:
			default:
			}
		}
	}
}

// maxPassDelay is how long a change waits for the changes that come with it
// before a pass.
const maxPassDelay = time.Second

// handler triggers a pass on a new or deleted object, and on an update that
// can change a finding: a new generation (the spec) or, with annotations,
// new annotations (ingress-nginx's configuration). Status updates, which
// proxies write often (an Ingress's address, a route's conditions), and our
// own status patches on AuthPolicies, do not.
func (c *ProxyChecker) handler(annotations bool) toolscache.ResourceEventHandlerFuncs {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.Trigger() },
		DeleteFunc: func(any) { c.Trigger() },
		UpdateFunc: func(o, n any) {
			oo, ok1 := o.(metav1.Object)
			no, ok2 := n.(metav1.Object)
			if !ok1 || !ok2 || oo.GetGeneration() != no.GetGeneration() ||
				(annotations && !maps.Equal(oo.GetAnnotations(), no.GetAnnotations())) {
				c.Trigger()
			}
		},
	}
}

// syncKinds starts an informer for each optional kind now served and
// readable, and stops the informer of each kind no longer served. Each
// change is logged once.
func (c *ProxyChecker) syncKinds(ctx context.Context) {
	for _, k := range optionalProxyKinds {
		name := k.String()
		version, why, err := c.served(ctx, k)
		if err != nil {
			// Cannot tell now: keep watching what is watched, look again later.
			if ctx.Err() == nil {
				c.Log.V(1).Info("looking for a proxy kind", "kind", name, "error", err.Error())
			}
			continue
		}
		c.mu.Lock()
		cur, watching := c.active[name]
		c.mu.Unlock()
		switch {
		case version != "" && watching && cur.versions[0] == version:
			continue
		case watching:
			if err := c.Cache.RemoveInformer(ctx, c.empty(cur)); err != nil {
				c.Log.Error(err, "stopping the informer of a proxy kind", "kind", name)
			}
			c.mu.Lock()
			delete(c.active, name)
			c.mu.Unlock()
			c.Log.Info("no longer watching a proxy kind", "kind", name, "why", why)
			c.Trigger() // its objects' findings are gone
		}
		if version == "" {
			c.mu.Lock()
			logged := c.absent[name]
			c.absent[name] = why
			c.mu.Unlock()
			switch {
			case logged == why:
			case why == whyNotInstalled:
				// The usual case (a cluster without Traefik, say): debug only.
				c.Log.V(1).Info("not watching a proxy kind", "kind", name, "why", why)
			default:
				c.Log.Info("not watching a proxy kind", "kind", name, "why", why)
			}
			continue
		}
		found := optionalKind{group: k.group, kind: k.kind, versions: []string{version}}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		inf, err := c.Cache.GetInformer(wctx, c.empty(found))
		cancel()
		if err == nil {
			_, err = inf.AddEventHandler(c.handler(true))
		}
		if err != nil {
			if ctx.Err() == nil {
				c.Log.Error(err, "watching a proxy kind; trying again later", "kind", name)
			}
			_ = c.Cache.RemoveInformer(ctx, c.empty(found))
			continue
		}
		c.mu.Lock()
		c.active[name] = found
		delete(c.absent, name)
		c.mu.Unlock()
		c.Log.Info("watching a proxy kind", "kind", name, "version", version)
	}
}

const whyNotInstalled = "its CRD is not installed"

// probeOptions list one item, where the cache reads (the chart grants the
// same rules in every watched namespace, so the first one tells).
func (c *ProxyChecker) probeOptions() []client.ListOption {
	opts := []client.ListOption{client.Limit(1)}
	if len(c.Namespaces) > 0 {
		opts = append(opts, client.InNamespace(c.Namespaces[0]))
	}
	return opts
}

// served returns the first version of k the API server serves and lets us
// list, or "" and why not; an error when it cannot tell (API server down).
func (c *ProxyChecker) served(ctx context.Context, k optionalKind) (string, string, error) {
	why := whyNotInstalled
	opts := c.probeOptions()
	for _, v := range k.versions {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(schema.GroupVersionKind{Group: k.group, Version: v, Kind: k.kind + "List"})
		switch err := c.Reader.List(ctx, list, opts...); {
		case err == nil:
			return v, "", nil
		case meta.IsNoMatchError(err) || apierrors.IsNotFound(err):
		case apierrors.IsForbidden(err):
			why = "its CRD is installed, but this controller may not list it: grant get, list and watch on it (the chart does)"
		default:
			return "", "", err
		}
	}
	return "", why, nil
}

// empty is an object of the kind, for the cache's informer calls.
func (c *ProxyChecker) empty(k optionalKind) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: k.group, Version: k.versions[0], Kind: k.kind})
	return u
}

// pass reads everything from the cache, checks it, and requeues the
// policies whose findings changed (every policy after the first pass).
func (c *ProxyChecker) pass(ctx context.Context) error {
	objects, regarding, err := c.readObjects(ctx)
	if err != nil {
		return err
	}
	var aps v1alpha1.AuthPolicyList
	if err := c.Client.List(ctx, &aps); err != nil {
		return fmt.Errorf("listing AuthPolicies: %w", err)
	}
	policies := make([]proxycheck.Policy, len(aps.Items))
	exists := map[string]bool{}
	for i := range aps.Items {
		policies[i] = proxycheck.PolicyFrom(&aps.Items[i])
		exists[policies[i].Key()] = true
	}
	result := proxycheck.CheckAll(proxycheck.Config{Service: c.Service}, objects, policies)

	byPolicy := map[string]proxyReport{}
	for key, objs := range result.Pointing {
		if exists[key] {
			byPolicy[key] = proxyReport{pointing: objs}
		}
	}
	byObject := map[string][]proxycheck.Finding{}
	for _, f := range result.Findings {
		byObject[f.Object] = append(byObject[f.Object], f)
		// A finding about a policy that does not exist (an auth-url naming
		// it) has no status to go to: the object's event says it.
		if !exists[f.Policy] {
			continue
		}
		r := byPolicy[f.Policy]
		switch f.Severity {
		case proxycheck.SeverityError:
			r.errors++
		case proxycheck.SeverityWarning:
			r.warnings++
		default:
			r.infos++
		}
		if len(r.findings) < maxProxyFindings {
			r.findings = append(r.findings, v1alpha1.ProxyFinding{
				Severity: string(f.Severity),
				Object:   truncate(f.Object, maxFindingField),
				Field:    truncate(f.Field, maxFindingField),
				Message:  truncate(f.Message, maxFindingText),
			})
		}
		byPolicy[f.Policy] = r
	}

	c.mu.Lock()
	first := !c.checked
	var changed []string
	for key := range exists {
		if first || !reportsEqual(c.byPolicy[key], byPolicy[key]) {
			changed = append(changed, key)
		}
	}
	c.byPolicy, c.checked = byPolicy, true
	c.mu.Unlock()

	if c.Policies != nil {
		for _, key := range changed {
			ns, name, _ := strings.Cut(key, "/")
			c.Policies.enqueue(ctx, ns, name)
		}
	}
	c.announce(regarding, byObject)
	c.passes.Add(1)
	return nil
}

func reportsEqual(a, b proxyReport) bool {
	return a.errors == b.errors && a.warnings == b.warnings && a.infos == b.infos &&
		slices.Equal(a.findings, b.findings) && slices.Equal(a.pointing, b.pointing)
}

// readObjects lists the Ingresses and the watched optional kinds from the
// cache, and Istio's mesh ConfigMap when AuthorizationPolicies are watched. It
// returns them as the checker reads them and as events refer to them, by name.
func (c *ProxyChecker) readObjects(ctx context.Context) ([]proxycheck.Object, map[string]runtime.Object, error) {
	var out []proxycheck.Object
	regarding := map[string]runtime.Object{}
	var ingresses networkingv1.IngressList
	if err := c.Client.List(ctx, &ingresses); err != nil {
		return nil, nil, fmt.Errorf("listing Ingresses: %w", err)
	}
	for i := range ingresses.Items {
		ing := &ingresses.Items[i]
		content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ing)
		if err != nil {
			return nil, nil, err
		}
		content["apiVersion"], content["kind"] = "networking.k8s.io/v1", "Ingress"
		o := proxycheck.NewObject(content, "")
		out = append(out, o)
		regarding[o.String()] = ing
	}
	c.mu.Lock()
	active := make([]optionalKind, 0, len(c.active))
	for _, k := range c.active {
		active = append(active, k)
	}
	c.mu.Unlock()
	slices.SortFunc(active, func(a, b optionalKind) int { return strings.Compare(a.String(), b.String()) })
	istio := false
	for _, k := range active {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(schema.GroupVersionKind{Group: k.group, Version: k.versions[0], Kind: k.kind + "List"})
		if err := c.Cache.List(ctx, list); err != nil {
			return nil, nil, fmt.Errorf("listing %s: %w", k, err)
		}
		for i := range list.Items {
			o := proxycheck.NewObject(list.Items[i].Object, "")
			out = append(out, o)
			regarding[o.String()] = &list.Items[i]
		}
		istio = istio || k.kind == "AuthorizationPolicy"
	}
	if istio {
		cm := &corev1.ConfigMap{}
		switch err := c.Reader.Get(ctx, istioMesh, cm); {
		case err == nil:
			content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cm)
			if err != nil {
				return nil, nil, err
			}
			content["apiVersion"], content["kind"] = "v1", "ConfigMap"
			out = append(out, proxycheck.NewObject(content, ""))
		case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
			// No mesh config here, or not ours to read (--watch-namespaces
			// without istio-system): providers are then unknown.
		default:
			return nil, nil, fmt.Errorf("reading ConfigMap %s: %w", istioMesh, err)
		}
	}
	return out, regarding, nil
}

// announce records an event on each proxy object whose findings changed: a
// Warning with its findings (reason ProxyMisconfigured with an error, else
// ProxyWarnings; Normal when only infos), or a Normal ProxyConfigured when
// they are gone. Nothing is recorded while the findings stay the same.
func (c *ProxyChecker) announce(regarding map[string]runtime.Object, byObject map[string][]proxycheck.Finding) {
	if c.Recorder == nil || (c.Leader != nil && !c.Leader.Leading()) {
		return
	}
	names := make([]string, 0, len(regarding))
	for name := range regarding {
		names = append(names, name)
	}
	slices.Sort(names)
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range c.flagged {
		if _, ok := regarding[name]; !ok {
			delete(c.flagged, name) // the object is gone
		}
	}
	for _, name := range names {
		fs := byObject[name]
		msgs := make([]string, 0, len(fs))
		errs, warns := 0, 0
		for _, f := range fs {
			switch f.Severity {
			case proxycheck.SeverityError:
				errs++
			case proxycheck.SeverityWarning:
				warns++
			}
			msgs = append(msgs, fmt.Sprintf("%s: %s: %s", f.Severity, f.Field, f.Message))
		}
		now := strings.Join(msgs, "; ")
		was := c.flagged[name]
		if now == was {
			continue
		}
		if now == "" {
			delete(c.flagged, name)
			c.Recorder.Eventf(regarding[name], nil, corev1.EventTypeNormal, v1alpha1.ReasonProxyConfigured, "ProxyCheck",
				"jwtgate finds nothing wrong any more in how this object points at it")
			continue
		}
		c.flagged[name] = now
		typ, reason := corev1.EventTypeWarning, v1alpha1.ReasonProxyWarnings
		switch {
		case errs > 0:
			reason = v1alpha1.ReasonProxyMisconfigured
		case warns == 0:
			typ = corev1.EventTypeNormal
		}
		c.Recorder.Eventf(regarding[name], nil, typ, reason, "ProxyCheck", "%s",
			truncate(fmt.Sprintf("%d finding(s): %s", len(fs), now), maxEventNote))
	}
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// setProxyCondition puts the findings about the proxy objects that point at
// ap into its status: the list, and ProxyConfigured summing it up. Before the
// checker's first pass it leaves both as they are (the pass requeues every
// policy).
func (r *AuthPolicyReconciler) setProxyCondition(ap *v1alpha1.AuthPolicy) {
	if r.Proxy == nil {
		ap.Status.ProxyFindings = nil
		meta.RemoveStatusCondition(&ap.Status.Conditions, v1alpha1.ConditionProxyConfigured)
		return
	}
	rep, checked := r.Proxy.report(ap.Namespace + "/" + ap.Name)
	if !checked {
		return
	}
	ap.Status.ProxyFindings = rep.findings
	cond := metav1.Condition{
		Type: v1alpha1.ConditionProxyConfigured, Status: metav1.ConditionTrue,
		Reason: v1alpha1.ReasonProxyConfigured, ObservedGeneration: ap.Generation,
		Message: "no Ingress, HTTPRoute, SecurityPolicy, Middleware or AuthorizationPolicy that the controller watches points at this policy",
	}
	if n := len(rep.pointing); n > 0 {
		names := rep.pointing[:min(n, 10)]
		more := ""
		if n > len(names) {
			more = fmt.Sprintf(" and %d more", n-len(names))
		}
		cond.Message = fmt.Sprintf("nothing wrong found in the %d proxy object(s) that point at this policy: %s%s", n, strings.Join(names, ", "), more)
	}
	if n := rep.errors + rep.warnings + rep.infos; n > 0 {
		f := rep.findings[0]
		cond.Reason = v1alpha1.ReasonProxyWarnings
		if rep.errors > 0 {
			cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonProxyMisconfigured
		}
		shown := ""
		if n > len(rep.findings) {
			shown = fmt.Sprintf(", the first %d", len(rep.findings))
		}
		cond.Message = truncate(fmt.Sprintf("%d error(s), %d warning(s), %d info(s) in the proxy objects that point at this policy (status.proxyFindings%s); first: %s: %s: %s",
			rep.errors, rep.warnings, rep.infos, shown, f.Object, f.Field, f.Message), maxConditionMessage)
	}
	meta.SetStatusCondition(&ap.Status.Conditions, cond)
}
