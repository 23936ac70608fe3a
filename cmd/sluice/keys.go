package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
)

// keyPrefix marks Sluice keys, so secret scanners and people can tell them apart.
const keyPrefix = "sk-sluice-"

func keysCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage API keys"}
	var (
		subject, team, name, namespace string
		roles                          []string
		expires                        time.Duration
	)
	create := &cobra.Command{
		Use:   "create --subject S [--team T] [--role R]... [--expires D]",
		Short: "Print a new random API key once, then the APIKey resource holding only its hash",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(subject) == "" {
				return errors.New("--subject is required")
			}
			key, hash, err := newKey(rand.Reader)
			if err != nil {
				return err
			}
			if name == "" {
				name = "key-" + hash[len("sha256:"):len("sha256:")+12]
			}
			k := v1alpha1.APIKey{
				TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.APIVersion, Kind: "APIKey"},
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
				Spec:       v1alpha1.APIKeySpec{Hash: hash, Subject: subject, Team: team, Roles: roles},
			}
			if expires > 0 {
				at := metav1.NewTime(time.Now().Add(expires).UTC().Truncate(time.Second))
				k.Spec.ExpiresAt = &at
			}
			k.Default()
			if errs := k.Validate(); len(errs) > 0 {
				return errs.ToAggregate()
			}
			out, err := yaml.Marshal(k)
			if err != nil {
				return err
			}
			// The key alone on the first line, so scripts can take it with head -1.
			fmt.Fprintln(stdout, key)
			fmt.Fprint(stdout, strings.Replace(string(out), "  creationTimestamp: null\n", "", 1))
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&subject, "subject", "", "who the key belongs to (required)")
	f.StringVar(&team, "team", "", "the holder's team")
	f.StringArrayVar(&roles, "role", nil, "a role of the holder (repeatable)")
	f.DurationVar(&expires, "expires", 0, "lifetime, e.g. 720h (default: no expiry)")
	f.StringVar(&name, "name", "", "the APIKey's metadata.name (default: key- and the start of its hash)")
	f.StringVar(&namespace, "namespace", "default", "the APIKey's namespace")
	cmd.AddCommand(create)
	return cmd
}

// newKey returns a key with 256 bits of entropy and its "sha256:HEX" hash.
func newKey(r io.Reader) (key, hash string, err error) {
	var raw [32]byte
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return "", "", err
	}
	key = keyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(key))
	return key, "sha256:" + hex.EncodeToString(sum[:]), nil
}
