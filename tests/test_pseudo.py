"The hard branch end to end on the tiny detector: teacher pass → pseudo-labels → student RPN and RoI sampling."
import torch
from crossmatch.model import build_detector
from crossmatch.multiscale import predict_every_level, student_features, teacher_forward
from crossmatch.pseudo import pseudo_labels, sampled_roi_counts


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
