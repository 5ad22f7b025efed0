package v1alpha1

// Condition types.
const (
	// ConditionReady is True when the policy's current generation is serving.
	ConditionReady = "Ready"
	// ConditionSessionsShared is False when sign-in sessions live in one replica only.
	ConditionSessionsShared = "SessionsShared"
	// ConditionWarnings is True when the policy serves but something in it is
	// likely not what was meant; the message lists each warning with its field.
	ConditionWarnings = "Warnings"
	// ConditionProxyConfigured says what the controller found in the proxy
	// objects (Ingresses, HTTPRoutes, SecurityPolicies, Traefik Middlewares,
	// Istio AuthorizationPolicies) that point at the policy: False when one has
	// an error, True otherwise; status.proxyFindings lists the findings.
	// Absent when the controller runs with --proxy-check=false.
	ConditionProxyConfigured = "ProxyConfigured"
)

// Reasons of the Warnings condition (the reason of the first warning).
const (
	// ReasonMethodsFallThrough: a rule names methods and no rule at its path
	// decides the others, which fall through to a less specific rule.
	ReasonMethodsFallThrough = "MethodsFallThrough"
	// ReasonMixedBcryptCosts: the users file mixes bcrypt costs, so unknown
	// names take as long as the costliest users only.
	ReasonMixedBcryptCosts = "MixedBcryptCosts"
	// ReasonNoWarnings: the Warnings condition is False.
	ReasonNoWarnings = "NoWarnings"
)

// Reasons of the Ready condition. Messages name the field and the Secret key.
const (
	ReasonReady             = "Ready"
	ReasonSecretNotFound    = "SecretNotFound"
	ReasonSecretKeyNotFound = "SecretKeyNotFound"
	ReasonKeyInvalid        = "KeyInvalid"
	ReasonJWKSUnreachable   = "JWKSUnreachable"
	ReasonUsersInvalid      = "UsersInvalid"
	ReasonAPIKeysInvalid    = "APIKeysInvalid"
	ReasonSigningKeyMissing = "SigningKeyMissing"
	ReasonSigningKeyInvalid = "SigningKeyInvalid"
	ReasonHostConflict      = "HostConflict"
	// ReasonHostNotAllowed: spec.hosts names a host the controller's
	// --host-claims do not let this namespace claim.
	ReasonHostNotAllowed = "HostNotAllowed"
	// ReasonOIDCDiscoveryFailed: the OpenID provider's discovery document (or
	// its keys) could not be loaded; the message never quotes the response.
	ReasonOIDCDiscoveryFailed = "OIDCDiscoveryFailed"
	ReasonInvalidSpec         = "InvalidSpec"
	ReasonPerReplica          = "PerReplicaSessions"
	ReasonSharedStore         = "SharedStore"
)

// Reasons of the ProxyConfigured condition; the proxy objects' events use the
// same reasons.
const (
	// ReasonProxyConfigured: no finding about the proxy objects that point at
	// the policy (True).
	ReasonProxyConfigured = "ProxyConfigured"
	// ReasonProxyWarnings: warnings or infos, no error (True).
	ReasonProxyWarnings = "ProxyWarnings"
	// ReasonProxyMisconfigured: at least one error, e.g. a forwardClaims header
	// the proxy does not copy from jwtgate's answer (False).
	ReasonProxyMisconfigured = "ProxyMisconfigured"
)
