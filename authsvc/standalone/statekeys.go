package standalone

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/authsvc/filesource"
	"github.com/jwtgate/jwtgate/authsvc/keys"
)

// StateKeyAlg is the algorithm of signing keys serve creates.
const StateKeyAlg = "ES256"

// addStateKeys gives every sign-in policy whose signing Secret the files lack a
// key kept in the state folder (created on first use, mode 0600), so that a
// restart keeps users signed in and nothing is written next to the config files,
// which may be read-only.
func addStateKeys(b *filesource.Bundle, stateDir string, log *slog.Logger) error {
	for _, ref := range missingSigningSecrets(b) {
		path := filepath.Join(stateDir, "signing-keys", ref.ns, ref.name+".pem")
		pemBytes, err := os.ReadFile(path) //nolint:gosec // G304: under the operator's --state-dir, names from validated policy keys
		if errors.Is(err, fs.ErrNotExist) {
			if pemBytes, err = keys.Generate(StateKeyAlg); err != nil {
				return fmt.Errorf("generating a signing key for secret %s/%s: %w", ref.ns, ref.name, err)
			}
			if err := writePrivate(path, pemBytes); err != nil {
				return fmt.Errorf("saving the signing key for secret %s/%s: %w (set --state-dir to a writable folder)", ref.ns, ref.name, err)
			}
			if log != nil {
				log.Info("created a signing key: the files name a signing Secret they do not hold", "secret", ref.ns+"/"+ref.name, "path", path)
			}
		} else if err != nil {
			return fmt.Errorf("reading the signing key for secret %s/%s: %w", ref.ns, ref.name, err)
		}
		b.Secrets = append(b.Secrets, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ref.ns, Name: ref.name},
			Data:       map[string][]byte{"private.pem": pemBytes},
		})
	}
	return nil
}

// addMissingSigningPlaceholders stands in for the keys serve would create, so
// that check does not report them.
func addMissingSigningPlaceholders(b *filesource.Bundle) {
	for _, ref := range missingSigningSecrets(b) {
		pemBytes, err := keys.Generate(StateKeyAlg)
		if err != nil {
			continue
		}
		b.Secrets = append(b.Secrets, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ref.ns, Name: ref.name},
			Data:       map[string][]byte{"private.pem": pemBytes},
		})
	}
}

type secretName struct{ ns, name string }

func missingSigningSecrets(b *filesource.Bundle) []secretName {
	have := map[secretName]bool{}
	for _, s := range b.Secrets {
		have[secretName{s.Namespace, s.Name}] = true
	}
	var out []secretName
	for _, ap := range b.Policies {
		if ap.Spec.Login == nil || ap.Spec.Login.SigningKeySecretRef.Name == "" {
			continue
		}
		n := secretName{ap.Namespace, ap.Spec.Login.SigningKeySecretRef.Name}
		if !have[n] {
			have[n] = true
			out = append(out, n)
		}
	}
	return out
}

func writePrivate(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
