package filesource

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsjson "sigs.k8s.io/json"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/proxycheck"
)

// The kinds a file may hold.
const (
	kindAuthPolicy     = "AuthPolicy"
	kindAuthPolicyList = "AuthPolicyList"
	kindSecret         = "Secret"
	kindSecretList     = "SecretList"
	kindList           = "List"
)

var (
	policyAPIVersion = v1alpha1.GroupVersion.String() // jwtgate.dev/v1alpha1
	coreAPIVersion   = corev1.SchemeGroupVersion.String()
)

// supportedKinds ends the message about a document Load cannot use.
var supportedKinds = fmt.Sprintf("supported are kind %s (apiVersion %s), kind %s (apiVersion %s), "+
	"and kind %s (apiVersion %s), %s or %s holding them; `jwtgate check` also reads the Ingresses, HTTPRoutes, "+
	"SecurityPolicies, Traefik Middlewares, Istio AuthorizationPolicies and ConfigMaps that configure proxies",
	kindAuthPolicy, policyAPIVersion, kindSecret, coreAPIVersion, kindList, coreAPIVersion, kindAuthPolicyList, kindSecretList)

// loader collects what Load reads.
type loader struct {
	bundle   *Bundle
	problems []Problem
}

func (l *loader) problem(loc Location, object, field, msg string) {
	l.problems = append(l.problems, Problem{Location: loc, Object: object, Field: field, Message: msg})
}

// typeMeta is the apiVersion and kind of a document.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// objectName is the part of metadata needed to name an object in messages
// before it is decoded.
type objectName struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// document decodes one JSON document, or one item of a List: prefix is then
// its field path ("items[2]") and def the apiVersion and kind its items have
// when they leave them out (typed lists, as `kubectl get -o yaml` writes them).
func (l *loader) document(loc Location, data []byte, prefix string, def typeMeta) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return // an empty document, or one holding only comments
	}
	if data[0] != '{' {
		l.problem(loc, "", prefix, fmt.Sprintf("expected an object with apiVersion and kind, found %s", jsonKind(data)))
		return
	}
	var tm typeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		l.problem(loc, "", prefix, "apiVersion and kind must be strings")
		return
	}
	if tm.APIVersion == "" && tm.Kind == "" {
		tm = def
	}

	var name objectName
	_ = json.Unmarshal(data, &name) // a bad name is reported when the object is decoded
	object := ""
	if name.Metadata.Name != "" && tm.Kind != "" {
		object = Ref{Kind: tm.Kind, Namespace: defaultNamespace(name.Metadata.Namespace), Name: name.Metadata.Name}.String()
	}

	switch {
	case tm.Kind == "":
		l.problem(loc, "", join(prefix, "kind"), "is required; "+supportedKinds)
	case tm.APIVersion == "":
		l.problem(loc, object, join(prefix, "apiVersion"), "is required; "+supportedKinds)
	case tm == typeMeta{policyAPIVersion, kindAuthPolicy}:
		l.policy(loc, data, prefix, object)
	case tm == typeMeta{coreAPIVersion, kindSecret}:
		l.secret(loc, data, prefix, object)
	case tm == typeMeta{coreAPIVersion, kindList}:
		l.list(loc, data, prefix, typeMeta{})
	case tm == typeMeta{policyAPIVersion, kindAuthPolicyList}:
		l.list(loc, data, prefix, typeMeta{policyAPIVersion, kindAuthPolicy})
	case tm == typeMeta{coreAPIVersion, kindSecretList}:
		l.list(loc, data, prefix, typeMeta{coreAPIVersion, kindSecret})
	case tm.Kind == kindAuthPolicy || tm.Kind == kindAuthPolicyList:
		l.problem(loc, object, join(prefix, "apiVersion"),
			fmt.Sprintf("%q is not supported for kind %s: use %s", tm.APIVersion, tm.Kind, policyAPIVersion))
	case tm.Kind == kindSecret || tm.Kind == kindSecretList || tm.Kind == kindList:
		l.problem(loc, object, join(prefix, "apiVersion"),
			fmt.Sprintf("%q is not supported for kind %s: use %s", tm.APIVersion, tm.Kind, coreAPIVersion))
	case proxycheck.Supported(tm.APIVersion, tm.Kind) && (tm.Kind != "ConfigMap" || holdsMeshConfig(data)):
		l.proxyObject(loc, data, prefix, object)
	default:
		l.problem(loc, object, prefix,
			fmt.Sprintf("kind %q (apiVersion %s) is not supported; %s", tm.Kind, tm.APIVersion, supportedKinds))
	}
}

// list decodes the items of a List, AuthPolicyList or SecretList.
func (l *loader) list(loc Location, data []byte, prefix string, def typeMeta) {
	var list struct {
		typeMeta `json:",inline"`
		Metadata json.RawMessage   `json:"metadata,omitempty"`
		Items    []json.RawMessage `json:"items"`
	}
	if !l.decodeStrict(loc, "", prefix, data, &list) {
		return
	}
	for i, item := range list.Items {
		l.document(loc, item, fmt.Sprintf("%s[%d]", join(prefix, "items"), i), def)
	}
}

// proxyObject keeps an object of the proxy side (Ingress, HTTPRoute, ...)
// for `jwtgate check`; serving ignores them.
func (l *loader) proxyObject(loc Location, data []byte, prefix, object string) {
	var content map[string]any
	if err := json.Unmarshal(data, &content); err != nil {
		l.problem(loc, object, prefix, "invalid document: "+err.Error())
		return
	}
	l.bundle.ProxyObjects = append(l.bundle.ProxyObjects, proxycheck.NewObject(content, loc.String()))
}

// holdsMeshConfig tells Istio's mesh ConfigMap (data.mesh) from other
// ConfigMaps, which have no place among jwtgate's files.
func holdsMeshConfig(data []byte) bool {
	var cm struct {
		Data struct {
			Mesh string `json:"mesh"`
		} `json:"data"`
	}
	return json.Unmarshal(data, &cm) == nil && cm.Data.Mesh != ""
}

// policy decodes an AuthPolicy and adds it to the bundle.
func (l *loader) policy(loc Location, data []byte, prefix, object string) {
	p := &v1alpha1.AuthPolicy{}
	if !l.decodeStrict(loc, object, prefix, data, p) {
		return
	}
	p.APIVersion, p.Kind = policyAPIVersion, kindAuthPolicy // items of typed lists may leave them out
	if !l.checkMeta(loc, object, prefix, kindAuthPolicy, p.Name, &p.Namespace) {
		return
	}
	ref := Ref{Kind: kindAuthPolicy, Namespace: p.Namespace, Name: p.Name}
	if l.claim(ref, loc, prefix) {
		l.bundle.Policies = append(l.bundle.Policies, p)
	}
}

// secret decodes a Secret, applies stringData as the API server does, and adds
// it to the bundle.
func (l *loader) secret(loc Location, data []byte, prefix, object string) {
	// encoding/json reports bad base64 without saying where; check each value
	// first to name the key.
	var encoded struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(data, &encoded) // a bad data field is reported by decodeStrict
	badBase64 := false
	for _, key := range sortedKeys(encoded.Data) {
		var s string
		if json.Unmarshal(encoded.Data[key], &s) != nil {
			continue // not a string: decodeStrict says so
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			badBase64 = true
			l.problem(loc, object, join(prefix, "data["+key+"]"), fmt.Sprintf(
				"is not valid base64 (%v): values under data are base64-encoded; put plain text under stringData instead", err))
		}
	}

	s := &corev1.Secret{}
	ok := l.decodeStrict(loc, object, prefix, data, s, func(err error) bool {
		var corrupt base64.CorruptInputError
		return badBase64 && errors.As(err, &corrupt) // already reported, with its key
	})
	if !ok || badBase64 {
		return
	}
	s.APIVersion, s.Kind = coreAPIVersion, kindSecret
	if !l.checkMeta(loc, object, prefix, kindSecret, s.Name, &s.Namespace) {
		return
	}
	for _, key := range sortedKeys(s.Data) {
		l.checkSecretKey(loc, object, join(prefix, "data["+key+"]"), key, &ok)
	}
	for _, key := range sortedKeys(s.StringData) {
		l.checkSecretKey(loc, object, join(prefix, "stringData["+key+"]"), key, &ok)
	}
	if !ok {
		return
	}
	// What the API server does on write: stringData is merged over data, and
	// never stored.
	if len(s.StringData) > 0 && s.Data == nil {
		s.Data = make(map[string][]byte, len(s.StringData))
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	ref := Ref{Kind: kindSecret, Namespace: s.Namespace, Name: s.Name}
	if l.claim(ref, loc, prefix) {
		l.bundle.Secrets = append(l.bundle.Secrets, s)
	}
}

func (l *loader) checkSecretKey(loc Location, object, field, key string, ok *bool) {
	if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
		l.problem(loc, object, field, "invalid key: "+strings.Join(errs, "; "))
		*ok = false
	}
}

// checkMeta checks the name and namespace as the API server would, and sets a
// missing namespace to "default".
func (l *loader) checkMeta(loc Location, object, prefix, kind, name string, namespace *string) bool {
	ok := true
	if name == "" {
		l.problem(loc, object, join(prefix, "metadata.name"), "is required: every "+kind+" needs a name")
		ok = false
	} else if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		l.problem(loc, object, join(prefix, "metadata.name"), fmt.Sprintf("invalid name %q: %s", name, strings.Join(errs, "; ")))
		ok = false
	}
	*namespace = defaultNamespace(*namespace)
	if errs := validation.IsDNS1123Label(*namespace); len(errs) > 0 {
		l.problem(loc, object, join(prefix, "metadata.namespace"), fmt.Sprintf("invalid namespace %q: %s", *namespace, strings.Join(errs, "; ")))
		ok = false
	}
	return ok
}

// claim records where ref came from, or reports it as a duplicate naming both
// places. It returns whether the object is new.
func (l *loader) claim(ref Ref, loc Location, prefix string) bool {
	if first, dup := l.bundle.Origin[ref]; dup {
		l.problem(loc, ref.String(), prefix, fmt.Sprintf(
			"defined twice: first at %s; an object may be defined once across all files", first))
		return false
	}
	l.bundle.Origin[ref] = loc
	return true
}

// decodeStrict decodes data into v, reporting unknown fields, fields set twice
// and values of the wrong type with their field paths. ignore, when given,
// drops errors already reported another way. It returns whether v is usable.
func (l *loader) decodeStrict(loc Location, object, prefix string, data []byte, v any, ignore ...func(error) bool) bool {
	strictErrs, err := sigsjson.UnmarshalStrict(data, v)
	if err != nil {
		if len(ignore) == 0 || !ignore[0](err) {
			field, msg := describeDecodeError(err)
			l.problem(loc, object, join(prefix, field), msg)
		}
		return false
	}
	for _, se := range strictErrs {
		var fe sigsjson.FieldError
		if !errors.As(se, &fe) {
			l.problem(loc, object, prefix, se.Error())
			continue
		}
		path := fe.FieldPath()
		msg := "is set twice"
		if strings.HasPrefix(se.Error(), "unknown field") {
			msg = "unknown field (field names are case-sensitive)"
			if s := suggestField(reflect.TypeOf(v), path); s != "" {
				msg = fmt.Sprintf("unknown field; did you mean %q?", s)
			}
		}
		l.problem(loc, object, join(prefix, path), msg)
	}
	return len(strictErrs) == 0
}

// describeDecodeError turns a JSON decoding error into a field path and a
// message about the YAML the user wrote.
func describeDecodeError(err error) (field, msg string) {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field, fmt.Sprintf("expected %s, found %s", describeType(te.Type), te.Value)
	}
	if ok, _ := sigsjson.SyntaxErrorOffset(err); ok {
		return "", "invalid document: " + err.Error()
	}
	// Errors of UnmarshalJSON methods (durations, quantities, times) do not
	// say where; their text says what.
	return "", "invalid value: " + err.Error()
}

// describeType names a Go type the way a YAML author thinks of it.
func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

// jsonKind names the kind of a JSON value for messages.
func jsonKind(data []byte) string {
	switch data[0] {
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// join appends a field path to a prefix.
func join(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	}
	return prefix + "." + path
}

// defaultNamespace gives objects without a namespace the one kubectl gives them
// when the context names none.
func defaultNamespace(ns string) string {
	if ns == "" {
		return metav1.NamespaceDefault
	}
	return ns
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
