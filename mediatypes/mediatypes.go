// Package mediatypes holds the media types, annotation keys and file-role
// rules of modelreg artifacts. It does no I/O.
//
// The native format is CNCF ModelPack model-spec v0.0.7 (specs-go/v1): an OCI
// image manifest with artifactType [ArtifactTypeModel], a ModelPack config
// blob and one raw layer per file. Names of modelreg's own live under the
// reverse-DNS prefix "dev.modelreg." (annotations) and
// "https://modelreg.dev/.../v1" (in-toto predicate types).
package mediatypes

import (
	modelspec "github.com/modelpack/model-spec/specs-go/v1"
)

// ModelPack names (model-spec v0.0.7).
const (
	// ArtifactTypeModel is the manifest artifactType of a model version.
	ArtifactTypeModel = modelspec.ArtifactTypeModelManifest
	// ModelConfig is the media type of the ModelPack config blob.
	ModelConfig = modelspec.MediaTypeModelConfig

	WeightRaw       = modelspec.MediaTypeModelWeightRaw
	WeightConfigRaw = modelspec.MediaTypeModelWeightConfigRaw
	DocRaw          = modelspec.MediaTypeModelDocRaw
	CodeRaw         = modelspec.MediaTypeModelCodeRaw
	DatasetRaw      = modelspec.MediaTypeModelDatasetRaw

	// AnnotationFilepath is the layer annotation holding the file's path
	// relative to the model folder, with forward slashes.
	AnnotationFilepath = modelspec.AnnotationFilepath
	// AnnotationFileMetadata is the layer annotation holding the JSON of
	// a modelspec.FileMetadata.
	AnnotationFileMetadata = modelspec.AnnotationFileMetadata
)

// Older ModelPack names (model-spec v0.0.1 to v0.0.6, "cnai"), accepted when
// reading.
const (
	LegacyArtifactTypeModel  = "application/vnd.cnai.model.manifest.v1+json"
	LegacyModelConfig        = "application/vnd.cnai.model.config.v1+json"
	LegacyAnnotationFilepath = "org.cnai.model.filepath"
)

// OCI names used alongside ModelPack (image-spec v1.1.1 annotations.go).
const (
	ManifestOCI = "application/vnd.oci.image.manifest.v1+json"
	IndexOCI    = "application/vnd.oci.image.index.v1+json"

	// AnnotationTitle is set on every layer so that `oras pull` restores
	// the file under its relative path.
	AnnotationTitle       = "org.opencontainers.image.title"
	AnnotationSource      = "org.opencontainers.image.source"
	AnnotationRevision    = "org.opencontainers.image.revision"
	AnnotationCreated     = "org.opencontainers.image.created"
	AnnotationDescription = "org.opencontainers.image.description"
	AnnotationLicenses    = "org.opencontainers.image.licenses"
	AnnotationBaseDigest  = "org.opencontainers.image.base.digest"
	AnnotationBaseName    = "org.opencontainers.image.base.name"
)

// Lineage annotations of modelreg, set on the manifest. Every reference to
// another artifact is a digest reference (REPO@sha256:...), never a tag.
const (
	// AnnotationDatasets is a comma-separated list of dataset references,
	// each REPO@DIGEST.
	AnnotationDatasets = "dev.modelreg.lineage.datasets"
	// AnnotationParent is the parent (base) model as REPO@DIGEST.
	AnnotationParent = "dev.modelreg.lineage.parent"
	// AnnotationRunID is the training run identifier.
	AnnotationRunID = "dev.modelreg.lineage.run.id"
	// AnnotationRunURL is the training run's URL.
	AnnotationRunURL = "dev.modelreg.lineage.run.url"
)

// In-toto predicate types of modelreg.
const (
	PredicateEvaluation = "https://modelreg.dev/evaluation/v1"
	PredicatePromotion  = "https://modelreg.dev/promotion/v1"
	PredicateApproval   = "https://modelreg.dev/approval/v1"
)

// Lineage link referrers: the downstream index of lineage. A link is an OCI
// 1.1 referrer manifest pushed into the repository of a dataset or parent
// model, whose subject is that dataset's or parent's manifest digest, whose
// artifactType is [ArtifactTypeLink] and whose one layer (media type
// [LinkMediaType]) is the JSON of the link: the relation and the downstream
// model version (repository, digest, version tag). The same link always has
// the same bytes, so a repeated push writes no second manifest. The
// downstream version's own lineage annotations remain the source of truth:
// a reader keeps a link only when they name the subject digest.
const (
	// ArtifactTypeLink is the artifactType of a lineage link referrer.
	ArtifactTypeLink = "application/vnd.modelreg.link.v1+json"
	// LinkMediaType is the media type of the link's one layer (JSON).
	LinkMediaType = "application/vnd.modelreg.link.v1+json"
	// AnnotationLinkRelation is "dataset" or "parent": how the downstream
	// version names the subject.
	AnnotationLinkRelation = "dev.modelreg.link.relation"
	// AnnotationLinkRepository is the downstream version's HOST/REPO.
	AnnotationLinkRepository = "dev.modelreg.link.repository"
	// AnnotationLinkDigest is the downstream version's manifest digest.
	AnnotationLinkDigest = "dev.modelreg.link.digest"
	// AnnotationLinkVersion is the downstream version's vN tag.
	AnnotationLinkVersion = "dev.modelreg.link.version"
)
