"""The hard branch end to end on the tiny detector: teacher pass → pseudo-labels → student RPN and RoI sampling; and
what the unsupervised terms may train (no box regression from pseudo-labels)."""
import torch
from crossmatch.model.detector import build_detector
from crossmatch.model.multiscale import predict_every_level, student_features, teacher_forward
from crossmatch.method.pseudo import pseudo_labels
from crossmatch.method.diagnostics import sampled_roi_counts
from crossmatch.method.config import MethodConfig
from crossmatch.method.step import UnlabeledBatch, unsupervised_losses


def test_teacher_pseudo_labels_train_the_student():
    torch.manual_seed(0)
    teacher = build_detector('tiny', num_classes=4).eval()
    student = build_detector('tiny', num_classes=4).train()
    images = [torch.rand(3, 128, 128) for _ in range(2)]
    output = teacher_forward(teacher, images)
    # an untrained teacher scores about 1/4 per class: a low δ keeps some boxes for the student
    targets = pseudo_labels(output.detections, score_threshold=0.0, nms_iou=0.5)
    assert all(len(t['boxes']) > 0 for t in targets)
    image_list, targets, features = student_features(student, images, targets)
    _, rpn_losses = student.rpn(image_list, features, targets)
    rois, _, labels, _ = student.roi_heads.select_training_samples(output.proposals, targets)
    prediction = predict_every_level(student.roi_heads, features, rois, image_list.image_sizes)
    loss = rpn_losses['loss_objectness'] + torch.nn.functional.cross_entropy(
        prediction.logits.flatten(0, 1), torch.cat(labels).repeat(prediction.logits.shape[0]))
    loss.backward()
    assert student.backbone.body.stem[0][0].weight.grad.abs().sum() > 0
    counts = sampled_roi_counts(rois, labels, targets)
    assert counts['false_positive'] == 0 and counts['false_negative'] == 0
    assert counts['true_positive'] == int(sum((l > 0).sum() for l in labels))


def gradient_sum(layer: torch.nn.Module) -> float:
    "Σ|∂L/∂w| of a layer's weight; 0 when no gradient reached it."
    return 0. if layer.weight.grad is None else float(layer.weight.grad.abs().sum())


def test_no_box_regression_from_pseudo_labels():
    "Eq. 5 and Eq. 6 train objectness and classification only: the regression layers get no gradient."
    torch.manual_seed(0)
    teacher = build_detector('tiny', num_classes=4).eval()
    student = build_detector('tiny', num_classes=4).train()
    images = [torch.rand(3, 128, 128) for _ in range(2)]
    output = teacher_forward(teacher, images)
    pseudo = pseudo_labels(output.detections, score_threshold=0.0)
    assert all(len(p['boxes']) > 0 for p in pseudo)  # positives exist, so a regression loss would not be empty
    inputs = UnlabeledBatch(images, images, output, pseudo)
    method = MethodConfig(ohem_k=16, ohem_ramp_iters=0)  # hard and soft branches, multi-scale, K = 16
    terms, _ = unsupervised_losses(student, inputs, method)
    sum(terms.values()).backward()
    assert gradient_sum(student.rpn.head.bbox_pred) == 0.
    assert gradient_sum(student.roi_heads.box_predictor.bbox_pred) == 0.
    assert gradient_sum(student.rpn.head.cls_logits) > 0.
    assert gradient_sum(student.roi_heads.box_predictor.cls_score) > 0.
