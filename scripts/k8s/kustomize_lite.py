"""Renders a kustomization offline, for exactly the kustomize features k8s/ uses.

No kustomize binary can be installed from the registries this project reaches
(Debian's kubernetes-client 1.20 bundles kustomize 2.0.3, which predates the
`patches:` field), so CI renders with this. It implements:

  resources   files (one or more YAML documents) and directories (a nested kustomization)
  namespace   set on every namespaced object
  images      name → newName / newTag / digest, in containers and initContainers
  patches     `path:` to a strategic-merge patch that names its object (no `target:`)

and refuses every other kustomization field, patch directive (`$patch`,
`$setElementOrder`, …) and `target:` with an error, instead of rendering
something kustomize would not. Strategic merge follows the Kubernetes merge
keys for the lists k8s/ patches (containers, volumes, env, ports, …): items
with the same key merge, the patch's items come first and the base's others
after them (kustomize's order, which matters for env), other lists are
replaced, and `null` deletes a field. Where `kubectl kustomize` exists, scripts/validate-k8s.sh
compares its output with this renderer's, object by object.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
IMAGE_FIELDS = {"name", "newName", "newTag", "digest"}
PATCH_FIELDS = {"path"}

CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
    "StorageClass", "PriorityClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
    "IngressClass", "RuntimeClass", "APIService",
}
# Objects whose namespace kustomize also rewrites inside their spec (subjects):
# not supported here, so refused rather than half-done.
NAMESPACE_REFERENCING = {"RoleBinding", "ClusterRoleBinding", "ValidatingWebhookConfiguration",
                         "MutatingWebhookConfiguration", "APIService"}

# Strategic-merge keys of the lists k8s/ can patch (x-kubernetes-patch-merge-key).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}


class KustomizeError(Exception):
    """A kustomization this renderer cannot render (or kustomize would refuse)."""


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; kubectl refuses the file. So do we."""


def _construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_documents(path: str) -> list[dict]:
    """Every non-empty YAML document in a file, each a mapping."""
    with open(path, encoding="utf-8") as handle:
        try:
            documents = [d for d in yaml.load_all(handle, Loader=UniqueKeyLoader) if d is not None]
        except yaml.YAMLError as error:
            raise KustomizeError(f"{path}: {error}") from error
    for document in documents:
        if not isinstance(document, dict):
            raise KustomizeError(f"{path}: a document is not a mapping")
    return documents


def object_id(obj: dict) -> tuple[str, str, str, str]:
    metadata = obj.get("metadata") or {}
    return (obj.get("apiVersion", ""), obj.get("kind", ""), metadata.get("namespace", ""), metadata.get("name", ""))


def describe(obj: dict) -> str:
    _, kind, namespace, name = object_id(obj)
    return f"{kind}/{namespace + '/' if namespace else ''}{name}"


def _kustomization_file(directory: str) -> str:
    for name in KUSTOMIZATION_FILES:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    raise KustomizeError(f"{directory}: no kustomization.yaml")


def render(directory: str) -> list[dict]:
    """The objects `kubectl kustomize DIRECTORY` would print (as dicts)."""
    path = _kustomization_file(directory)
    documents = load_documents(path)
    if len(documents) != 1:
        raise KustomizeError(f"{path}: expected one document")
    spec = documents[0]
    unknown = sorted(set(spec) - SUPPORTED_FIELDS)
    if unknown:
        raise KustomizeError(
            f"{path}: unsupported kustomization field(s) {', '.join(unknown)} "
            f"(this renderer knows {', '.join(sorted(SUPPORTED_FIELDS))})")
    if spec.get("kind", "Kustomization") != "Kustomization":
        raise KustomizeError(f"{path}: kind must be Kustomization")

    objects: list[dict] = []
    for entry in spec.get("resources") or []:
        target = os.path.normpath(os.path.join(directory, entry))
        if os.path.isdir(target):
            objects.extend(render(target))
        elif os.path.isfile(target):
            objects.extend(load_documents(target))
        else:
            raise KustomizeError(f"{path}: resource {entry!r} not found")
    _check_unique(objects, path)

    for patch in spec.get("patches") or []:
        _apply_patch_entry(objects, patch, directory, path)
    if "namespace" in spec:
        _set_namespace(objects, spec["namespace"], path)
    for image in spec.get("images") or []:
        _set_image(objects, image, path)
    return objects


def _check_unique(objects: list[dict], path: str) -> None:
    seen = set()
    for obj in objects:
        key = object_id(obj)
        if key in seen:
            raise KustomizeError(f"{path}: {describe(obj)} is listed twice")
        seen.add(key)


def _apply_patch_entry(objects: list[dict], entry: Any, directory: str, path: str) -> None:
    if not isinstance(entry, dict) or set(entry) - PATCH_FIELDS or "path" not in entry:
        raise KustomizeError(f"{path}: patches: only `- path: FILE` entries are supported, got {entry!r}")
    patch_path = os.path.join(directory, entry["path"])
    if not os.path.isfile(patch_path):
        raise KustomizeError(f"{path}: patch {entry['path']!r} not found")
    for patch in load_documents(patch_path):
        _, kind, namespace, name = object_id(patch)
        matches = [
            obj for obj in objects
            if obj.get("apiVersion") == patch.get("apiVersion") and obj.get("kind") == kind
            and (obj.get("metadata") or {}).get("name") == name
            and (not namespace or (obj.get("metadata") or {}).get("namespace") == namespace)
        ]
        if len(matches) != 1:
            raise KustomizeError(
                f"{patch_path}: the patch for {patch.get('apiVersion')} {kind}/{name} matches "
                f"{len(matches)} objects, expected 1")
        merged = strategic_merge(matches[0], patch, [kind], patch_path)
        matches[0].clear()
        matches[0].update(merged)


def strategic_merge(base: Any, patch: Any, where: list[str], patch_path: str) -> Any:
    """Kubernetes strategic merge of `patch` into `base`, for the subset above."""
    if not isinstance(patch, dict) or not isinstance(base, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(key, str) and key.startswith("$"):
            raise KustomizeError(f"{patch_path}: patch directive {key!r} at {'.'.join(where)} is not supported")
        if value is None:
            result.pop(key, None)
        elif key in result and isinstance(result[key], dict) and isinstance(value, dict):
            result[key] = strategic_merge(result[key], value, where + [key], patch_path)
        elif key in result and isinstance(result[key], list) and isinstance(value, list):
            merge_key = _merge_key(key, where)
            result[key] = (_merge_list(result[key], value, merge_key, where + [key], patch_path)
                           if merge_key else copy.deepcopy(value))
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merge_key(key: str, where: list[str]) -> str | None:
    if key == "ports":
        # Container ports merge on containerPort; a Service's on port.
        if where and where[-1] in ("containers[]", "initContainers[]"):
            return "containerPort"
        if where[:1] == ["Service"] and where[-1] == "spec":
            return "port"
        return None
    return MERGE_KEYS.get(key)


def _merge_list(base: list, patch: list, merge_key: str, where: list[str], patch_path: str) -> list:
    # As kustomize orders them: the patch's items first (merged with the item
    # of the same key, if any), then the base's other items, in their order.
    patched: list = []
    used: set = set()
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise KustomizeError(
                f"{patch_path}: an item of {'.'.join(where)} has no {merge_key!r} (its merge key)")
        if any(isinstance(k, str) and k.startswith("$") for k in item):
            raise KustomizeError(f"{patch_path}: patch directives in {'.'.join(where)} are not supported")
        for index, existing in enumerate(base):
            if isinstance(existing, dict) and existing.get(merge_key) == item[merge_key]:
                patched.append(strategic_merge(existing, item, where[:-1] + [where[-1] + "[]"], patch_path))
                used.add(index)
                break
        else:
            patched.append(_drop_nulls(copy.deepcopy(item)))
    return patched + [copy.deepcopy(existing) for index, existing in enumerate(base) if index not in used]


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _set_namespace(objects: list[dict], namespace: str, path: str) -> None:
    for obj in objects:
        if obj.get("kind") in NAMESPACE_REFERENCING:
            raise KustomizeError(f"{path}: namespace: {describe(obj)} is not supported by this renderer")
        if obj.get("kind") in CLUSTER_SCOPED:
            continue
        obj.setdefault("metadata", {})["namespace"] = namespace


def _split_image(image: str) -> tuple[str, str]:
    """('registry:5000/ferry', ':tag' or '@sha256:…' or '')."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def _set_image(objects: list[dict], entry: Any, path: str) -> None:
    if not isinstance(entry, dict) or "name" not in entry or set(entry) - IMAGE_FIELDS:
        raise KustomizeError(f"{path}: images: expected name with newName/newTag/digest, got {entry!r}")

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("containers", "initContainers") and isinstance(value, list):
                    for container in value:
                        if isinstance(container, dict) and isinstance(container.get("image"), str):
                            container["image"] = _retag(container["image"], entry)
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    for obj in objects:
        visit(obj)


def _retag(image: str, entry: dict) -> str:
    name, suffix = _split_image(image)
    if name != entry["name"]:
        return image
    name = entry.get("newName", name)
    if "digest" in entry:
        suffix = "@" + entry["digest"]
    elif "newTag" in entry:
        suffix = ":" + str(entry["newTag"])
    return name + suffix
